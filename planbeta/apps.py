from django.apps import AppConfig, apps
from django.core.management.base import CommandError
from django.db import connections
from django.db.models.signals import post_migrate

from planbeta.db_roles import RoleSetupError, app_roles_of_owner, apply_app_role


class PlanbetaConfig(AppConfig):
    """The project itself, installed so that its management commands (the demo seed, which spans
    every app; db_roles) and its OpenAPI extensions are found, and so that `migrate` re-applies
    the application role's grants. It has no models and no migrations."""

    name = "planbeta"
    verbose_name = "Plan Beta"

    def ready(self) -> None:
        from planbeta import openapi  # noqa: F401  (registers the schema extensions)

        # Sent once per app with models; the audit app's is the one whose table matters most
        # and it always exists. The project app has no models, so it is never a sender itself.
        post_migrate.connect(
            reapply_app_roles, sender=apps.get_app_config("audit"), dispatch_uid="db_roles"
        )


def reapply_app_roles(*, using, plan=None, verbosity=1, stdout=None, **kwargs):
    """After `migrate` by the owner: db_roles again for each application role it set up.

    A migration that adds an append-only table or a partition of one gives it, through the
    owner's default privileges, the business grants (UPDATE, DELETE); this narrows it before
    `migrate` returns. `flush` sends post_migrate too, without a plan: nothing changed then.
    """
    if plan is None:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    for role in app_roles_of_owner(connection):
        try:
            apply_app_role(connection, role=role)
        except RoleSetupError as exc:
            raise CommandError(f"db_roles, after migrate: {exc}") from None
        if verbosity >= 1 and stdout is not None:
            stdout.write(f"  Grants of the application role {role} applied again (db_roles).")
