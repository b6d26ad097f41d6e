from django.core.management.base import BaseCommand, CommandError

from audit.archive import ArchiveError
from audit.context import audit_context
from audit.models import Source
from audit.restore import DEFAULT_TABLE, KEY_COLUMN, restore_archive


class Command(BaseCommand):
    help = (
        "Verify an archive of the audit trail and load its rows into a table of their own "
        f"(--into, default {DEFAULT_TABLE}), never into the trail. Again: the same rows, once. "
        "Creates the table: run as the owner of the tables."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="an archive key, e.g. audit/money/2016-12")
        parser.add_argument("--into", default=DEFAULT_TABLE, help="the restore table")

    def handle(self, *args, key, into, **options):
        with audit_context(source=Source.COMMAND, label="audit_restore"):
            try:
                loaded = restore_archive(key, into=into)
            except ArchiveError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"restored {loaded} rows of {key} into {into}")
        # Printed for the auditor to run, never executed here.
        query = f"SELECT * FROM {into} WHERE {KEY_COLUMN} = '{key}' ORDER BY id;"  # noqa: S608
        self.stdout.write(query)
