from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from audit import retention
from audit.archive import ArchiveError, archive_month
from audit.context import audit_context
from audit.models import Source


def parse_month(raw: str):
    try:
        return datetime.strptime(raw, "%Y-%m").date()
    except ValueError:
        raise CommandError(f"--month {raw!r} is not a month (YYYY-MM).") from None


class Command(BaseCommand):
    help = (
        "Archive one unit of the audit trail (one retention class of one UTC month) to the "
        "archive storage: rows.jsonl.gz, rows.csv.gz and manifest.json, recorded and audited. "
        "The rows stay in the database; audit_retention takes them out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM (UTC)")
        parser.add_argument(
            "--class", dest="retention_class", required=True, choices=retention.CLASSES
        )
        parser.add_argument("--source-table", help="read a detached partition instead")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="write the archive again (only while its rows are in the database)",
        )

    def handle(self, *args, month, retention_class, source_table=None, replace=False, **options):
        with audit_context(source=Source.COMMAND, label="audit_archive"):
            try:
                manifest = archive_month(
                    parse_month(month), retention_class, source_table=source_table, replace=replace
                )
            except ArchiveError as exc:
                raise CommandError(str(exc)) from None
        ids = f"ids {manifest.first_id}-{manifest.last_id}" if manifest.row_count else "no rows"
        self.stdout.write(f"archived {manifest.key}: {manifest.row_count} rows, {ids}")
        self.stdout.write(manifest.key)
