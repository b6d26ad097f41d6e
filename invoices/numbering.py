"""Gapless yearly numbers (PB-2026-0001, STU-2026-0001) from a locked counter row.

Why a counter row and not a PostgreSQL sequence: a sequence hands out a value outside the
transaction, so a rolled-back insert would leave a gap, and GST / German bookkeeping expect none.
The counter row is locked (SELECT … FOR UPDATE) by the transaction that inserts the numbered
row; a second generator waits for the first to commit or roll back, and a rollback returns the
number because the increment rolls back with it. Callers must be inside transaction.atomic().
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from invoices.models import YearCounter


def draw_next_number(counter_model: type[YearCounter], year: int) -> int:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("draw_next_number must run inside the inserting transaction")
    # ON CONFLICT DO NOTHING: the first draw of a year creates the row without a race.
    counter_model._default_manager.bulk_create([counter_model(year=year)], ignore_conflicts=True)
    counter = counter_model._default_manager.select_for_update().get(year=year)
    counter_model._default_manager.filter(pk=year).update(last_number=F("last_number") + 1)
    return counter.last_number + 1


def invoice_number(year: int, sequence: int) -> str:
    return f"PB-{year}-{sequence:04d}"


def student_code(year: int, sequence: int) -> str:
    return f"STU-{year}-{sequence:04d}"
