from django.core.management.base import BaseCommand

from audit import chain
from audit.context import audit_context
from audit.models import Source


class Command(BaseCommand):
    help = (
        "Seal what is pending and write an AUDIT_CHECKPOINT row with the chain's head now; "
        "prints the head (SEQ:HASH) to keep outside the database."
    )

    def handle(self, *args, **options):
        with audit_context(source=Source.COMMAND, label="audit_checkpoint"):
            row = chain.write_checkpoint()
        if row is None:
            self.stdout.write("the chain is empty: nothing to witness yet")
            return
        self.stdout.write(f"checkpoint row {row.pk}: head {row.metadata['witness']}")
