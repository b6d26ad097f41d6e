"""The monitoring app's own tables: running totals of the audit trail, the payments and the
students for the Prometheus counters (monitoring/metrics.py, monitoring/money_counts.py), and what
the health checks have said over time (the status page)."""

from __future__ import annotations

from decimal import Decimal

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


class MoneyCount(models.Model):
    """Payments and students of one currency whose ids are at most MoneyCountMark's marks.

    Exact only because a payment and a student are never deleted (PROTECT, read-only admin, no
    refunds in the domain) and never change currency or amount once written; a refund or a
    correction would have to be a new row of its own for these totals to stay right.
    """

    currency = models.CharField(max_length=3, unique=True)
    payments = models.BigIntegerField(default=0)
    # Wider than one payment's field: the sum of every payment of the school's life.
    amount = models.DecimalField(max_digits=24, decimal_places=2, default=Decimal("0.00"))
    students = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.currency}: {self.payments} payments, {self.students} students"


class MoneyCountMark(models.Model):
    """The one row (pk 1) that says how far MoneyCount has counted each table, and the next marks'
    candidates, drawn, settled and moved together as AuditCountMark's (monitoring.money_counts)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    payments_to_id = models.BigIntegerField(default=0)
    students_to_id = models.BigIntegerField(default=0)
    advanced_at = models.DateTimeField(null=True, blank=True)
    candidate_payment_id = models.BigIntegerField(null=True, blank=True)
    candidate_student_id = models.BigIntegerField(null=True, blank=True)
    candidate_drawn_at = models.DateTimeField(null=True, blank=True)
    candidate_xmax = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"payments counted to id {self.payments_to_id}, students to {self.students_to_id}"


class CheckState(models.Model):
    """Where one health check stands and since when (one row per check).

    Written by beat's check run and by the status page when a run finds the status changed; a
    run older than the one stored (two workers at once) changes nothing.
    """

    name = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16)
    since = models.DateTimeField()
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class CheckChange(models.Model):
    """One change of a check's status: the record the status page lists."""

    name = models.CharField(max_length=64)
    old_status = models.CharField(max_length=16, blank=True)  # blank: first seen
    new_status = models.CharField(max_length=16)
    changed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.old_status or '-'} → {self.new_status}"
