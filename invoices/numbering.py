"""Gapless yearly numbers (PB-2026-0001, STU-2026-0001) from a locked counter row.

Why a counter row and not a PostgreSQL sequence: a sequence hands out a value outside the
transaction, so a rolled-back insert would leave a gap, and GST / German bookkeeping expect none.
The counter row is locked (by the upsert that draws the number) by the transaction that inserts
the numbered row; a second generator waits for the first to commit or roll back, and a rollback
returns the number because the increment rolls back with it. Callers must be inside
transaction.atomic().
"""

from __future__ import annotations

from typing import cast

from django.db import models, transaction

from core import rows
from invoices.models import YearCounter

STUDENT_CODE_PREFIX = "STU"


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


def draw_next_code_into(
    counter_model: type[YearCounter],
    year: int,
    *,
    prefix: str,
    row: models.Model,
    field: str,
) -> tuple[int, str]:
    """Draw the year's next number and write its code (`{prefix}-{year}-0001`, as
    student_code spells it) into `field` of `row`, in one statement; return both.

    On PostgreSQL the upsert and the UPDATE go as one statement (the upsert in a WITH): one
    round trip fewer while the counter's row is locked, which every other draw of the year
    waits on. Elsewhere, the draw and then the UPDATE.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        number = draw_next_number(counter_model, year)
        code = _code(prefix, year, number)
        type(row)._default_manager.filter(pk=row.pk).update(**{field: code})
        return number, code
    if not connection.in_atomic_block:
        raise RuntimeError("draw_next_code_into must run inside the inserting transaction")
    qn = connection.ops.quote_name
    counter = qn(counter_model._meta.db_table)
    meta = row._meta
    table = qn(meta.db_table)
    column = qn(cast(str, cast(models.Field, meta.get_field(field)).column))
    pk = qn(cast(str, meta.pk.column))
    # The code is spelled in SQL as _code spells it, and checked against it below.
    sql = (
        f"WITH drawn AS (INSERT INTO {counter} ({qn('year')}, {qn('last_number')}) "  # noqa: S608
        f"VALUES (%s, 1) ON CONFLICT ({qn('year')}) DO UPDATE SET {qn('last_number')} = "
        f"{counter}.{qn('last_number')} + 1 RETURNING {qn('last_number')} AS n) "
        f"UPDATE {table} SET {column} = %s || lpad(drawn.n::text, greatest(4, "
        f"length(drawn.n::text)), '0') FROM drawn WHERE {table}.{pk} = %s "
        f"RETURNING drawn.n, {table}.{column}"
    )
    with rows.cursor(connection) as cursor:
        cursor.execute(sql, [year, f"{prefix}-{year}-", row.pk])
        found = cursor.fetchone()
    if found is None:
        # No row to number. The upsert in the WITH ran all the same (PostgreSQL runs a
        # data-modifying WITH to completion): the error rolls the draw back with the
        # transaction it ends.
        raise RuntimeError(f"draw_next_code_into: no {meta.label} with pk {row.pk}")
    number, code = int(found[0]), found[1]
    if code != _code(prefix, year, number):
        raise RuntimeError(f"draw_next_code_into: {code!r} is not how number {number} is spelled")
    return number, code


def _code(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:04d}"


def invoice_number(year: int, sequence: int) -> str:
    return f"PB-{year}-{sequence:04d}"


def student_code(year: int, sequence: int) -> str:
    return _code(STUDENT_CODE_PREFIX, year, sequence)
