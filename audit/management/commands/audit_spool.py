from django.core.management.base import BaseCommand

from audit import spool


class Command(BaseCommand):
    help = (
        "Show the audit rows waiting in this host's spool (kept while the database was away); "
        "with --replay, write them to the trail now (each exactly once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--replay", action="store_true")

    def handle(self, *args, replay: bool, **options):
        if replay:
            handled = spool.replay()
            self.stdout.write(f"replayed {handled} rows")
        waiting = spool.pending()
        for path, rows in waiting:
            self.stdout.write(f"{path.name}: {rows} rows")
        total = sum(rows for _, rows in waiting)
        self.stdout.write(f"{total} rows waiting in {spool.spool_directory()}")
