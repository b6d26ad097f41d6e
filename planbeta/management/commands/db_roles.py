"""`python manage.py db_roles --app-role NAME`: the application role, with least privilege.

Run as the owner of the tables, after `migrate` (docker-compose's `migrate` service runs both).
What the role may do is in planbeta/db_roles.py and the README ("Database roles").
"""

from __future__ import annotations

import os
import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from planbeta.db_roles import RoleSetupError, apply_app_role

DEFAULT_PASSWORD_ENV = "DATABASE_APP_PASSWORD"  # noqa: S105 (a variable's name)
# The `change-me…` values of .env.example, refused as the settings refuse them.
PLACEHOLDER = re.compile(r"change[-_]?me", re.IGNORECASE)


class Command(BaseCommand):
    help = (
        "Create or update the application role (the user in DATABASE_URL of web, worker and "
        "beat) with least privilege: INSERT and SELECT only on the audit trail. Run it as the "
        "owner of the tables; it is idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, metavar="NAME", help="the role's name")
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help=(
                "the environment variable holding the role's password (default "
                f"{DEFAULT_PASSWORD_ENV}; when that is unset, a new role gets no password and an "
                "existing one keeps its own). Never given on the command line, where any local "
                "user could read it."
            ),
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="the alias to run as")

    def handle(self, *args, app_role: str, password_env: str | None, database: str, **options):
        variable = password_env or DEFAULT_PASSWORD_ENV
        password = os.environ.get(variable) or None
        if password_env and password is None:
            raise CommandError(f"{variable} is not set (named by --password-env).")
        if password is not None and not settings.DEBUG and PLACEHOLDER.match(password):
            raise CommandError(
                f"{variable} still holds a placeholder from .env.example: set a real password."
            )
        try:
            done = apply_app_role(connections[database], role=app_role, password=password)
        except RoleSetupError as exc:
            raise CommandError(str(exc)) from None

        verb = "created" if done.created else "updated"
        secret = f", password from {variable}" if done.password_set else ""
        self.stdout.write(
            f"Application role {done.role} {verb}{secret}; the tables' owner is {done.owner}."
        )
        self.stdout.write(
            f"  SELECT, INSERT, UPDATE, DELETE on {done.business} tables; SELECT on "
            f"{', '.join(done.read_only)}; USAGE, SELECT on {done.sequences} sequences."
        )
        self.stdout.write(f"  SELECT and INSERT only on: {', '.join(done.append_only)}.")
        if done.created and not done.password_set:
            self.stdout.write(
                self.style.WARNING(
                    f"  {done.role} has no password: it can log in only where the server trusts "
                    f"the connection. Set {variable} and run db_roles again to give it one."
                )
            )
