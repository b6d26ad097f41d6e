from django.core.management.base import BaseCommand

from alerts import delivery, services
from audit.context import audit_context
from audit.models import Source


class Command(BaseCommand):
    help = (
        "Evaluate the alert rules once and hand due notifications to delivery. Without Redis "
        "(the quick start) delivery runs inline; run it from cron when no beat is running."
    )

    def handle(self, *args, **options):
        with audit_context(source=Source.COMMAND, label="run_alert_rules"):
            queued = services.evaluate_rules()
            handed = delivery.sweep_outbox()
        self.stdout.write(f"queued {len(queued)} notifications, handed {handed} to delivery")
