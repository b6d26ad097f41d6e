from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit import chain
from audit.context import audit_context
from audit.models import Source


def _since(raw: str) -> datetime:
    moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw)
        if day is None:
            raise CommandError(f"--since {raw!r} is not a date (YYYY-MM-DD) or an ISO date-time.")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = (
        "Seal the audit rows waiting for their seal, then walk the hash chain: exit 0 when it is "
        "intact, else non-zero printing `first broken row: <id>`. --checkpoint SEQ:HASH also "
        "checks the chain against a head witnessed outside the database (the daily digest)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="only the seals made since this date (YYYY-MM-DD)")
        parser.add_argument(
            "--checkpoint", metavar="HEAD", help="a witnessed head, SEQ:HASH (or the hash alone)"
        )

    def handle(self, *args, since=None, checkpoint=None, **options):
        moment = _since(since) if since else None
        witnessed = None
        if checkpoint:
            try:
                witnessed = chain.parse_checkpoint(checkpoint)
            except ValueError as exc:
                raise CommandError(f"--checkpoint: {exc}.") from None
        with audit_context(source=Source.COMMAND, label="audit_verify"):
            result = chain.verify(since=moment, checkpoint=witnessed)
            chain.record_verification(result, runner=chain.COMMAND)
        rate = result.checked / result.seconds if result.seconds else 0.0
        self.stdout.write(
            f"checked {result.checked} seals in {result.seconds:.2f} s ({rate:,.0f} rows/s); "
            f"head {chain.witness(result.head_seq, result.head_hash)}"
        )
        for note in result.notes:
            self.stdout.write(note)
        if result.intact:
            self.stdout.write("audit chain intact")
            return
        self.stdout.write(f"audit chain BROKEN: {result.problem}")
        if len(result.unsealed) > 1:
            self.stdout.write("rows without a seal: " + ", ".join(map(str, result.unsealed)))
        self.stdout.write(f"first broken row: {result.first_broken_id}")
        raise CommandError("the audit chain is broken", returncode=2)
