from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_issue
from audit.context import audit_context
from audit.models import Source


class Command(BaseCommand):
    help = "Issue an API token for a user. The token is printed once, as the last line."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, *args, email: str, name: str, **options):
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user with e-mail {email}.")
        with audit_context(source=Source.COMMAND, label="issue_token"):
            raw = api_token_issue(user=user, name=name)
        self.stdout.write(f"Token for {user.email} ({user.role}). It is not stored; keep it safe:")
        self.stdout.write(raw)
