"""Do the books and the audit trail agree? (Completeness of the trail.)

The audit trail is written in the same transaction as every money change, so each money row has
the audit rows it should, with the same amounts. Anyone with database access who changes a
payment, or inserts one behind the services, breaks that agreement; this finds where:

* every payment has its INFO PAYMENT_RECEIVED row (entity Payment) with the same amount and
  currency;
* every student has its STUDENT_CREATED row and the LEAD_TO_STUDENT_CONVERSION row that names it
  (`metadata.studentPk`);
* every invoice has its INVOICE_GENERATED row;
* an invoice's paid amount (and so its remaining amount, total - paid) is the sum of its payments,
  and a student's total paid the sum of theirs;
* no invoice is PAID without a payment.

Each kind is one set-based query (an anti-join or a grouped sum), so the cost grows with the
tables but never by one query per row: bench/reconcile.py measures it at 100,000 payments.

It lives here, not in `audit`, because it reads the money apps' tables, which `audit` may not
import; and the money apps never import monitoring.
"""

# The queries below are assembled from model table names, actions and severities (constants,
# never input).
# ruff: noqa: S608
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from audit.models import Action, AuditLog, Severity
from audit.services import AuditEntry, audit_record_independent
from invoices.models import Invoice, InvoiceStatus
from payments.models import Payment, Student

logger = logging.getLogger(__name__)

# How many mismatches the audit row of a run lists (all are counted, and printed by the command).
RECORDED_MISMATCHES = 50


@dataclass(frozen=True)
class Mismatch:
    kind: str  # the kind of row: payment, student, invoice
    id: int
    problem: str

    def line(self) -> str:
        return f"{self.kind} {self.id}: {self.problem}"


@dataclass
class Reconciliation:
    mismatches: list[Mismatch] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0
    # Milliseconds per comparison, for bench/reconcile.py.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> dict[str, Any]:
        """What the audit row of a run carries: counts, and the first mismatches."""
        return {
            "checked": self.checked,
            "mismatchCount": len(self.mismatches),
            "mismatchesByKind": dict(Counter(m.kind for m in self.mismatches)),
            "mismatches": [m.line() for m in self.mismatches[:RECORDED_MISMATCHES]],
            "durationMs": round(self.duration_ms, 1),
        }


class _Sql:
    """The few spellings PostgreSQL and SQLite (the quick start) do not share."""

    def __init__(self, vendor: str) -> None:
        self.postgresql = vendor == "postgresql"

    def meta(self, alias: str, key: str) -> str:
        # metadata ->> key: the value as text on both.
        if self.postgresql:
            return f"{alias}.metadata ->> '{key}'"
        return f"json_extract({alias}.metadata, '$.{key}')"

    def money_text(self, expr: str) -> str:
        # numeric(12, 2) as text is "134.00" on PostgreSQL, as money_str writes it in metadata.
        # SQLite keeps decimals with numeric affinity (134.00 becomes 134), so it is formatted.
        if self.postgresql:
            return f"({expr})::text"
        return f"printf('%.2f', {expr})"

    def id_text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def differs(self, left: str, right: str) -> str:
        # NULL-safe inequality: a missing metadata key is a mismatch too.
        return f"{left} IS DISTINCT FROM {right}" if self.postgresql else f"{left} IS NOT {right}"


def _tables() -> dict[str, str]:
    return {
        "audit": AuditLog._meta.db_table,
        "payment": Payment._meta.db_table,
        "student": Student._meta.db_table,
        "invoice": Invoice._meta.db_table,
    }


def _queries(sql: _Sql) -> list[tuple[str, str, list[Any]]]:
    """(kind, query, params): each query returns (id, problem text parts...)."""
    t = _tables()
    info = Severity.INFO

    def audit_row(action: str, entity_type: str, entity_id: str) -> str:
        # Only the INFO row is the record of the change; ERROR/CRITICAL rows of the same action
        # report failed attempts.
        return (
            f"SELECT 1 FROM {t['audit']} a WHERE a.action = '{action}' AND a.severity = '{info}' "
            f"AND a.entity_type = '{entity_type}' AND a.entity_id = {sql.id_text(entity_id)}"
        )

    payment_amount = sql.money_text("p.amount")
    return [
        # A payment without its PAYMENT_RECEIVED row (inserted behind the services: the joined
        # columns are NULL), or with one whose amount or currency is not the payment's.
        (
            "payment",
            f"SELECT p.id, {payment_amount}, p.currency, a.id, "
            f"{sql.meta('a', 'amount')}, {sql.meta('a', 'currency')} "
            f"FROM {t['payment']} p LEFT JOIN {t['audit']} a "
            f"ON a.action = '{Action.PAYMENT_RECEIVED}' AND a.severity = '{info}' "
            f"AND a.entity_type = 'Payment' AND a.entity_id = {sql.id_text('p.id')} "
            f"WHERE {sql.differs(sql.meta('a', 'amount'), payment_amount)} "
            f"OR {sql.differs(sql.meta('a', 'currency'), 'p.currency')} "
            "ORDER BY p.id, a.id",
            [],
        ),
        (
            "student_unaudited",
            f"SELECT s.id FROM {t['student']} s "
            f"WHERE NOT EXISTS ({audit_row(Action.STUDENT_CREATED, 'Student', 's.id')}) "
            "ORDER BY s.id",
            [],
        ),
        # The conversion row is about the invoice and names the student it created.
        (
            "student_unconverted",
            f"SELECT s.id FROM {t['student']} s WHERE NOT EXISTS ("
            f"SELECT 1 FROM {t['audit']} a "
            f"WHERE a.action = '{Action.LEAD_TO_STUDENT_CONVERSION}' AND a.severity = '{info}' "
            f"AND {sql.meta('a', 'studentPk')} = {sql.id_text('s.id')}) "
            "ORDER BY s.id",
            [],
        ),
        (
            "invoice_unaudited",
            f"SELECT i.id FROM {t['invoice']} i "
            f"WHERE NOT EXISTS ({audit_row(Action.INVOICE_GENERATED, 'Invoice', 'i.id')}) "
            "ORDER BY i.id",
            [],
        ),
        # Paid amount against the sum of the payments, grouped once over the payment table.
        (
            "invoice_paid",
            f"SELECT i.id, {sql.money_text('i.paid_amount')}, "
            f"{sql.money_text('COALESCE(s.total, 0)')} "
            f"FROM {t['invoice']} i LEFT JOIN ("
            f"SELECT invoice_id, SUM(amount) AS total FROM {t['payment']} GROUP BY invoice_id"
            ") s ON s.invoice_id = i.id "
            "WHERE i.paid_amount <> COALESCE(s.total, 0) ORDER BY i.id",
            [],
        ),
        (
            "invoice_paid_without_payment",
            f"SELECT i.id FROM {t['invoice']} i WHERE i.status = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {t['payment']} p WHERE p.invoice_id = i.id) "
            "ORDER BY i.id",
            [InvoiceStatus.PAID],
        ),
        (
            "student_paid",
            f"SELECT st.id, {sql.money_text('st.total_paid')}, "
            f"{sql.money_text('COALESCE(s.total, 0)')} "
            f"FROM {t['student']} st LEFT JOIN ("
            f"SELECT student_id, SUM(amount) AS total FROM {t['payment']} GROUP BY student_id"
            ") s ON s.student_id = st.id "
            "WHERE st.total_paid <> COALESCE(s.total, 0) ORDER BY st.id",
            [],
        ),
    ]


def _mismatch(kind: str, row: tuple[Any, ...]) -> Mismatch:
    if kind == "payment":
        pk, amount, currency, audit_id, audited_amount, audited_currency = row
        if audit_id is None:
            return Mismatch("payment", pk, "no PAYMENT_RECEIVED audit row")
        return Mismatch(
            "payment",
            pk,
            f"is {currency} {amount}, its PAYMENT_RECEIVED audit row {audit_id} says "
            f"{audited_currency} {audited_amount}",
        )
    if kind == "student_unaudited":
        return Mismatch("student", row[0], "no STUDENT_CREATED audit row")
    if kind == "student_unconverted":
        return Mismatch("student", row[0], "no LEAD_TO_STUDENT_CONVERSION audit row names it")
    if kind == "invoice_unaudited":
        return Mismatch("invoice", row[0], "no INVOICE_GENERATED audit row")
    if kind == "invoice_paid":
        return Mismatch(
            "invoice", row[0], f"paid amount is {row[1]}, its payments add up to {row[2]}"
        )
    if kind == "invoice_paid_without_payment":
        return Mismatch("invoice", row[0], "is PAID without any payment")
    if kind == "student_paid":
        return Mismatch(
            "student", row[0], f"total paid is {row[1]}, their payments add up to {row[2]}"
        )
    raise ValueError(kind)


def reconcile(*, using: str = "default") -> Reconciliation:
    """Run every comparison now and return what disagrees (nothing is written)."""
    conn = connections[using]
    sql = _Sql(conn.vendor)
    started = time.perf_counter()
    result = Reconciliation()
    t = _tables()
    outermost = not conn.in_atomic_block
    with transaction.atomic(using=using), conn.cursor() as cursor:
        if sql.postgresql and outermost:
            # One snapshot for every comparison, so the counts and the mismatches describe the
            # same moment. The joins hash or sort a few columns of every payment and audit row of
            # its kind; with the default 4 MB of work_mem those spill to disk (three times the
            # time at 100,000 payments, bench/reconcile.py). Local to this transaction.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if sql.postgresql:
            cursor.execute("SET LOCAL work_mem = '64MB'")
        for name in ("payment", "student", "invoice"):
            # Table names come from the models, never from input.
            cursor.execute(f"SELECT COUNT(*) FROM {t[name]}")
            result.checked[f"{name}s"] = cursor.fetchone()[0]
        for kind, query, params in _queries(sql):
            query_started = time.perf_counter()
            cursor.execute(query, params)
            result.mismatches.extend(_mismatch(kind, row) for row in cursor.fetchall())
            result.timings[kind] = (time.perf_counter() - query_started) * 1000
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def reconcile_and_record() -> Reconciliation:
    """Reconcile and write the result as a RECONCILIATION audit row: INFO when all agree,
    CRITICAL (which raises the critical-event alert) on any mismatch.

    The health check reads the latest such row instead of reconciling on every request.
    """
    result = reconcile()
    if result.ok:
        description = "Reconciliation: payments, students and invoices agree with the audit trail"
    else:
        description = (
            f"Reconciliation found {len(result.mismatches)} mismatches between the money rows "
            "and the audit trail"
        )
    audit_record_independent(
        AuditEntry(
            Action.RECONCILIATION,
            severity=Severity.INFO if result.ok else Severity.CRITICAL,
            description=description,
            metadata=result.summary(),
        )
    )
    if not result.ok:
        logger.error("reconciliation: %s mismatches", len(result.mismatches))
    return result
