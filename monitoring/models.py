"""Running totals of the audit trail for the Prometheus counters (monitoring/metrics.py)."""

from django.db import models


class AuditCount(models.Model):
    """Audit rows of one (action, severity) whose id is at most `AuditCountMark.counted_to_id`.

    A scrape adds the rows above the mark, counted live, so the counter is exact without a
    GROUP BY over the whole trail; the mark moves up about once an hour.
    """

    action = models.CharField(max_length=64)
    severity = models.CharField(max_length=8)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["action", "severity"], name="monitoring_auditcount_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.severity}: {self.count}"


class AuditCountMark(models.Model):
    """The one row (pk 1) that says how far AuditCount has counted, and the next mark's candidate.

    A candidate id becomes the mark only once every transaction that could still insert an audit
    row at or below it has ended (monitoring.metrics explains how that is known).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    counted_to_id = models.BigIntegerField(default=0)
    advanced_at = models.DateTimeField(null=True, blank=True)
    candidate_id = models.BigIntegerField(null=True, blank=True)
    candidate_drawn_at = models.DateTimeField(null=True, blank=True)
    # PostgreSQL's next transaction id when the candidate had settled for a while (xid8 as text
    # fits a bigint); None on SQLite, whose writers are serialised.
    candidate_xmax = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"audit counted to id {self.counted_to_id}"
