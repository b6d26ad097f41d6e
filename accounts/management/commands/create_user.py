import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from accounts.models import Role, User
from accounts.services import user_create
from audit.context import audit_context
from audit.models import Source


class Command(BaseCommand):
    help = "Create a staff account. Prompts for the password unless --password is given."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Avoid in shared shells: it lands in history.")

    def handle(self, *args, email: str, name: str, role: str, password: str | None, **options):
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"{email!r} is not a valid e-mail address.") from exc
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"A user with e-mail {email} already exists.")
        if password is None:
            password = getpass.getpass("Password: ")
        try:
            validate_password(password, User(email=email, name=name))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        with audit_context(source=Source.COMMAND, label="create_user"):
            user = user_create(email=email, name=name, role=role, password=password)
        self.stdout.write(f"Created {user.role.lower()} {user.email} (id {user.pk}).")
