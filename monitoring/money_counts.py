"""Payments (count and sum) and students per currency for /metrics, exact at scrape time at a cost
that does not grow with the tables.

The same roll-up by id as the audit counts (monitoring.metrics explains the candidate, the settle
and the transaction ids): `MoneyCount` holds the totals of the rows up to a mark id per table, and
a scrape adds the rows above the marks, found through the primary keys and counted live, in one
statement (one snapshot; money_counts says why the marks go in as values). Nothing is added to
the money transaction: the payment and student writes take no lock of ours, and the roll-up's
rows are written only by scrapes.

Exact because a payment or a student is never deleted or changed in currency or amount (see
MoneyCount). Both tables' candidates are drawn, settled and moved together: pay-and-convert writes
a payment and a student in one transaction, and one noted transaction id covers both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Max
from django.utils import timezone

from monitoring import snapshots
from monitoring.models import MoneyCount, MoneyCountMark
from payments.models import Payment, Student

_CENTS = Decimal("0.01")


@dataclass(frozen=True)
class CurrencyCounts:
    payments: int
    amount: Decimal
    students: int


@dataclass(frozen=True)
class CountsRead:
    counts: dict[str, CurrencyCounts]
    marks: tuple[int, int]  # (payments_to_id, students_to_id) the totals belong to


def _money_counts_sql() -> str:
    counts = MoneyCount._meta.db_table
    return (
        "SELECT currency, SUM(payments), SUM(amount), SUM(students) FROM ("  # noqa: S608 - model tables
        f" SELECT currency, payments, amount, students FROM {counts}"
        " UNION ALL"
        f" SELECT currency, COUNT(*), SUM(amount), 0 FROM {Payment._meta.db_table}"
        " WHERE id > %s GROUP BY currency"
        " UNION ALL"
        f" SELECT currency, 0, 0, COUNT(*) FROM {Student._meta.db_table}"
        " WHERE id > %s GROUP BY currency"
        ") AS counts GROUP BY currency"
        " UNION ALL"
        f" SELECT NULL, payments_to_id, NULL, students_to_id FROM {MoneyCountMark._meta.db_table}"
        " WHERE id = 1"
    )


def _decimal(value: object) -> Decimal:
    # PostgreSQL's numeric arrives as a Decimal; SQLite's sum as an int or a float, which Django's
    # own Sum() would round to the field's two places as well.
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(_CENTS)


def counts_above(cursor: CursorWrapper, marks: tuple[int, int]) -> CountsRead:
    """One statement: the rolled-up totals, the rows above `marks` (payment id, student id)
    counted live, and the marks the totals belong to, all from one snapshot."""
    cursor.execute(_money_counts_sql(), list(marks))
    counted: dict[str, CurrencyCounts] = {}
    current = (0, 0)
    for currency, payments, amount, students in cursor.fetchall():
        if currency is None:
            current = (int(payments), int(students))
        else:
            counted[currency] = CurrencyCounts(int(payments), _decimal(amount), int(students))
    return CountsRead(dict(sorted(counted.items())), current)


def money_counts() -> dict[str, CurrencyCounts]:
    """Payments, their sum and students per currency, exact at this moment: the rolled-up totals
    plus the rows above the marks. Currencies in order; a currency with neither payments nor
    students is absent.

    The marks go into the statement as values, not as a subquery: PostgreSQL then plans the
    live part from the ids' statistics (a few rows: the primary key's index), where a subquery's
    unknown value is planned as a third of the table, which can become a sequential scan as the
    table grows or its rows lose their id order (a student row is rewritten at every
    instalment). The statement also returns the marks its totals belong to; if another worker
    moved them since they were read, it runs again with those (at most once an hour).
    """
    _moved, mark = _take_step(timezone.now())
    marks = (mark.payments_to_id, mark.students_to_id)
    with connection.cursor() as cursor:
        while True:
            read = counts_above(cursor, marks)
            if read.marks == marks:
                return read.counts
            marks = read.marks


def advance_money_counts(*, now: datetime | None = None) -> bool:
    """Take the next step of moving the marks up, if one is due; True if they moved.

    One primary-key read when nothing is due; each step is claimed with a conditional UPDATE, so
    several workers scraping at once take it once. The first move waits only for the settle, not
    the hour: until then every scrape counts both tables whole.
    """
    return _take_step(now or timezone.now())[0]


def _take_step(now: datetime) -> tuple[bool, MoneyCountMark]:
    """The step that is due, and the mark as it was read before it."""
    mark = MoneyCountMark.objects.filter(pk=1).first()
    if mark is None:
        MoneyCountMark.objects.get_or_create(pk=1)
        mark = MoneyCountMark.objects.get(pk=1)
        return _draw_candidates(mark, now), mark
    if mark.candidate_payment_id is None:
        return _draw_candidates(mark, now), mark
    drawn_at = cast(datetime, mark.candidate_drawn_at)
    on_postgres = connection.vendor == "postgresql"
    if on_postgres and mark.candidate_xmax is None:
        if now - drawn_at >= timedelta(seconds=settings.MONITORING_AUDIT_SETTLE_SECONDS):
            _note_xmax(mark)
        return False, mark
    rollup = timedelta(seconds=settings.MONITORING_AUDIT_ROLLUP_SECONDS)
    if mark.advanced_at is not None and now - mark.advanced_at < rollup:
        return False, mark
    if on_postgres and not snapshots.ended_before(mark.candidate_xmax):
        return False, mark
    return _advance(mark, now), mark


def _draw_candidates(mark: MoneyCountMark, now: datetime) -> bool:
    payment_top = Payment.objects.aggregate(top=Max("id"))["top"] or 0
    student_top = Student.objects.aggregate(top=Max("id"))["top"] or 0
    MoneyCountMark.objects.filter(pk=1, candidate_payment_id__isnull=True).update(
        candidate_payment_id=max(payment_top, mark.payments_to_id),
        candidate_student_id=max(student_top, mark.students_to_id),
        candidate_drawn_at=now,
        candidate_xmax=None,
    )
    return False


def _note_xmax(mark: MoneyCountMark) -> None:
    xmax = snapshots.next_transaction()
    MoneyCountMark.objects.filter(
        pk=1, candidate_payment_id=mark.candidate_payment_id, candidate_xmax__isnull=True
    ).update(candidate_xmax=xmax)


def _advance(mark: MoneyCountMark, now: datetime) -> bool:
    counts = MoneyCount._meta.db_table
    with transaction.atomic():
        claimed = MoneyCountMark.objects.filter(
            pk=1,
            payments_to_id=mark.payments_to_id,
            students_to_id=mark.students_to_id,
            candidate_payment_id=mark.candidate_payment_id,
            candidate_student_id=mark.candidate_student_id,
        ).update(
            payments_to_id=mark.candidate_payment_id,
            students_to_id=mark.candidate_student_id,
            advanced_at=now,
            candidate_payment_id=None,
            candidate_student_id=None,
            candidate_drawn_at=None,
            candidate_xmax=None,
        )
        if not claimed:
            return False  # another worker moved them
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {counts} (currency, payments, amount, students)"  # noqa: S608
                f" SELECT currency, COUNT(*), SUM(amount), 0 FROM {Payment._meta.db_table}"
                " WHERE id > %s AND id <= %s GROUP BY currency"
                " ON CONFLICT (currency) DO UPDATE SET"
                f" payments = {counts}.payments + EXCLUDED.payments,"
                f" amount = {counts}.amount + EXCLUDED.amount",
                [mark.payments_to_id, mark.candidate_payment_id],
            )
            cursor.execute(
                f"INSERT INTO {counts} (currency, payments, amount, students)"  # noqa: S608
                f" SELECT currency, 0, 0, COUNT(*) FROM {Student._meta.db_table}"
                " WHERE id > %s AND id <= %s GROUP BY currency"
                " ON CONFLICT (currency) DO UPDATE SET"
                f" students = {counts}.students + EXCLUDED.students",
                [mark.students_to_id, mark.candidate_student_id],
            )
    # The next candidates at once, so that they have settled by the next hour.
    _draw_candidates(MoneyCountMark.objects.get(pk=1), now)
    return True
