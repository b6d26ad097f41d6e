from django.core.management.base import BaseCommand, CommandError

from audit.context import audit_context
from audit.models import Source
from monitoring.reconciliation import reconcile, reconcile_and_record


class Command(BaseCommand):
    help = (
        "Check that payments, students and invoices agree with the audit trail: one line per "
        "mismatch, exit status 1 on any. The result is recorded (the health check shows it) "
        "unless --dry-run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Only print; write no RECONCILIATION row."
        )

    def handle(self, *args, dry_run: bool, **options):
        with audit_context(source=Source.COMMAND, label="reconcile"):
            result = reconcile() if dry_run else reconcile_and_record()
        for mismatch in result.mismatches:
            self.stdout.write(mismatch.line())
        checked = ", ".join(f"{n} {name}" for name, n in result.checked.items())
        if result.mismatches:
            raise CommandError(
                f"{len(result.mismatches)} mismatches ({checked} checked in "
                f"{result.duration_ms:.0f} ms)"
            )
        self.stdout.write(f"all agree: {checked} checked in {result.duration_ms:.0f} ms")
