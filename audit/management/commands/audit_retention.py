from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date

from audit.archive import ArchiveError
from audit.context import audit_context
from audit.expiry import apply_retention
from audit.models import Source


class Command(BaseCommand):
    help = (
        "Apply the retention policy (AUDIT_RETENTION_YEARS): each due monthly partition of a "
        "class is archived, verified, detached and dropped, each step recorded and audited; "
        "never a DELETE. Run as the owner of the tables (DDL)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="list what is due, change nothing"
        )
        parser.add_argument(
            "--keep-detached",
            action="store_true",
            help="stop before the drop: the detached tables stay",
        )
        parser.add_argument("--today", help="YYYY-MM-DD (default: today, UTC)")

    def handle(self, *args, dry_run=False, keep_detached=False, today=None, **options):
        day = parse_date(today) if today else timezone.now().date()
        if day is None:
            raise CommandError(f"--today {today!r} is not a date (YYYY-MM-DD).")
        with audit_context(source=Source.COMMAND, label="audit_retention"):
            try:
                failed = apply_retention(
                    today=day, dry_run=dry_run, keep_detached=keep_detached, say=self.stdout.write
                )
            except ArchiveError as exc:
                raise CommandError(str(exc)) from None
        if failed:
            raise CommandError(f"{failed} units stopped on a problem", returncode=2)
