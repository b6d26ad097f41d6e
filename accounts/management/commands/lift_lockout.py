from axes.models import AccessAttempt
from django.core.management.base import BaseCommand, CommandError

from accounts.services import lockout_clear
from audit.context import audit_context
from audit.models import Source


class Command(BaseCommand):
    help = "Lift the login lockout of an account (at every address, or at --address), audited."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--address", help="only the lockout at this client address")

    def handle(self, *args, email: str, address: str | None, **options):
        attempts = AccessAttempt.objects.filter(username=email.strip().lower())
        if address:
            attempts = attempts.filter(ip_address=address)
        with audit_context(source=Source.COMMAND, label="lift_lockout"):
            lifted = lockout_clear(attempts=attempts)
        if not lifted:
            raise CommandError("No failed login attempts match.")
        self.stdout.write(f"Lifted {lifted} lockout(s).")
