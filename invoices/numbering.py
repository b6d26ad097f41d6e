"""Gapless yearly numbers (PB-2026-0001, STU-2026-0001) from a locked counter row.

Why a counter row and not a PostgreSQL sequence: a sequence hands out a value outside the
transaction, so a rolled-back insert would leave a gap, and GST / German bookkeeping expect none.
The counter row is locked (by the upsert that draws the number) by the transaction that inserts
the numbered row; a second generator waits for the first to commit or roll back, and a rollback
returns the number because the increment rolls back with it. Callers must be inside
transaction.atomic().
"""

from __future__ import annotations

from django.db import transaction

from invoices.models import YearCounter


def draw_next_number(counter_model: type[YearCounter], year: int) -> int:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("draw_next_number must run inside the inserting transaction")
    connection = transaction.get_connection()
    qn = connection.ops.quote_name
    table = qn(counter_model._meta.db_table)
    # One statement that creates the year's row or bumps it, and locks it either way until the
    # transaction ends (PostgreSQL and SQLite both take the upsert). One round trip rather than
    # an INSERT, a SELECT ... FOR UPDATE and an UPDATE: the row lock is what every other
    # generator of the year queues on, so the less the transaction does after this, the better.
    sql = (
        f"INSERT INTO {table} ({qn('year')}, {qn('last_number')}) VALUES (%s, 1) "  # noqa: S608
        f"ON CONFLICT ({qn('year')}) DO UPDATE SET {qn('last_number')} = "
        f"{table}.{qn('last_number')} + 1 RETURNING {qn('last_number')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [year])
        (number,) = cursor.fetchone()
    return int(number)


def invoice_number(year: int, sequence: int) -> str:
    return f"PB-{year}-{sequence:04d}"


def student_code(year: int, sequence: int) -> str:
    return f"STU-{year}-{sequence:04d}"
