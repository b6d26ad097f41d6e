from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken
from accounts.services import api_token_revoke
from audit.context import audit_context
from audit.models import Source


class Command(BaseCommand):
    help = (
        "Revoke API tokens: one by its prefix (pb_xxxxxxx) or all of a user's with --all-for EMAIL."
    )

    def add_arguments(self, parser):
        parser.add_argument("prefix", nargs="?")
        parser.add_argument("--all-for", dest="email")

    def handle(self, *args, prefix: str | None, email: str | None, **options):
        tokens = ApiToken.objects.select_related("user").filter(revoked_at__isnull=True)
        if email:
            tokens = tokens.filter(user__email__iexact=email)
        elif prefix:
            tokens = tokens.filter(prefix=prefix[:10])
        else:
            raise CommandError("Give a token prefix or --all-for EMAIL.")
        found = list(tokens)
        if not found:
            raise CommandError("No active token matches.")
        with audit_context(source=Source.COMMAND, label="revoke_token"):
            for token in found:
                api_token_revoke(token=token)
        self.stdout.write(f"Revoked {len(found)} token(s).")
