"""One Lead-like row per variant, identical but for how (and whether) its writes are tracked."""

import pghistory
from auditlog.registry import auditlog
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords


class LeadRow(models.Model):
    name = models.CharField(max_length=150)
    whatsapp = models.CharField(max_length=32)
    email = models.EmailField(blank=True)
    source = models.CharField(max_length=16)
    status = models.CharField(max_length=16, default="NEW")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class PlainLead(LeadRow):
    """The baseline: no audit at all."""


class OursLead(LeadRow):
    """Written with an explicit audit_record in the same transaction, as the services do."""


@pghistory.track()  # its default trackers: a trigger for INSERT and one for UPDATE
class PghistoryLead(LeadRow):
    pass


class SimpleHistoryLead(LeadRow):
    history = HistoricalRecords()


class AuditlogLead(LeadRow):
    pass


auditlog.register(AuditlogLead)
