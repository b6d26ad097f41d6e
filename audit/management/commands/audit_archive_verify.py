from django.core.management.base import BaseCommand, CommandError

from audit.archive import mark_verified, verify_archive
from audit.context import audit_context
from audit.models import AuditArchive, Source


class Command(BaseCommand):
    help = (
        "Verify archives of the audit trail: each file's sha256 and size against the manifest, "
        "the manifest against its record, and every row against its seal in the hash chain. "
        "Exit 0 when every archive named verifies; else 2, a line per archive that does not."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", nargs="?", help="an archive key, e.g. audit/money/2016-12")
        parser.add_argument("--all", action="store_true", help="every archive recorded")

    def handle(self, *args, key=None, all=False, **options):
        if bool(key) == bool(all):
            raise CommandError("name one archive KEY, or --all.")
        keys = list(AuditArchive.objects.values_list("key", flat=True)) if all else [key]
        broken = 0
        with audit_context(source=Source.COMMAND, label="audit_archive_verify"):
            for name in keys:
                check = verify_archive(name)
                record = AuditArchive.objects.filter(key=name).first()
                if record is not None:
                    mark_verified(record, check)
                if check.ok:
                    self.stdout.write(f"{name}: verified, {check.rows} rows")
                else:
                    broken += 1
                    self.stdout.write(f"{name}: DOES NOT VERIFY: {check.problems[0]}")
        self.stdout.write(f"{len(keys) - broken} of {len(keys)} archives verify")
        if broken:
            raise CommandError(f"{broken} archives do not verify", returncode=2)
