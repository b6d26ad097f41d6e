from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit import partitions, retention


def _month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise CommandError(f"{text!r} is not a month (YYYY-MM)") from None


class Command(BaseCommand):
    help = (
        "The audit trail's monthly partitions (PostgreSQL). `list`: every leaf by month and "
        "retention class, attached or detached, and the rows in the DEFAULT partition. `ensure`: "
        "create the months up to --months-ahead (as beat does daily). `detach YYYY-MM CLASS`: "
        "take one class's month out of the trail, keeping its rows in a table of its own (run it "
        "with the owner's database URL)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        ensure = sub.add_parser("ensure")
        ensure.add_argument(
            "--months-ahead", type=int, default=settings.AUDIT_PARTITION_MONTHS_AHEAD
        )
        detach = sub.add_parser("detach")
        detach.add_argument("month", type=_month)
        detach.add_argument("retention_class", choices=retention.CLASSES)

    def handle(self, *args, action: str, **options):
        try:
            if action == "ensure":
                created = partitions.ensure_partitions(options["months_ahead"])
                for name in created:
                    self.stdout.write(f"created {name}")
                self.stdout.write(f"{len(created)} tables created")
            elif action == "detach":
                name = partitions.detach_partition(options["month"], options["retention_class"])
                self.stdout.write(f"detached {name} (its rows stay in it until it is dropped)")
            else:
                self._list()
        except partitions.PartitionError as exc:
            raise CommandError(str(exc)) from None

    def _list(self) -> None:
        leaves = partitions.list_partitions()
        if not leaves:
            self.stdout.write("not partitioned (one table)")
            return
        for leaf in leaves:
            state = "attached" if leaf.attached else "DETACHED"
            rows = "?" if leaf.rows_estimate is None else f"~{leaf.rows_estimate}"
            self.stdout.write(
                f"{leaf.month:%Y-%m} {leaf.retention_class:<6} {state:<8} {rows:>10} {leaf.table}"
            )
        ahead = partitions.months_ahead(today=timezone.now().date())
        self.stdout.write(f"months ahead: {'none' if ahead is None else ahead}")
        self.stdout.write(f"rows in {partitions.DEFAULT_PARTITION}: {partitions.default_rows()}")
