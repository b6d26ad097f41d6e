"""A conversion's writes two at a time: each pair one statement on PostgreSQL (a WITH).

Every round trip of a conversion is a wake-up of the database's process and of ours; on a busy
machine each costs more than the statement itself (bench/pay_and_convert.py). The invoice and
the lead are updated by one statement, the student and its payment inserted by another. The
values are those Model.save would send: each field's pre_save and get_db_prep_save, so
auto_now, defaults and conversions stay the models' own. Elsewhere (SQLite) each write is the
model's own save.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from invoices.models import Invoice
from leads.models import Lead
from payments.models import Payment, Student


def update_invoice_and_lead(
    invoice: Invoice, invoice_fields: Sequence[str], lead: Lead, lead_fields: Sequence[str]
) -> None:
    """Save these fields of the invoice and of its lead (both locked by the caller)."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        invoice.save(update_fields=invoice_fields)
        lead.save(update_fields=lead_fields)
        return
    invoice_set, invoice_params = _assignments(conn, invoice, invoice_fields)
    lead_set, lead_params = _assignments(conn, lead, lead_fields)
    qn = conn.ops.quote_name
    invoice_table, lead_table = qn(Invoice._meta.db_table), qn(Lead._meta.db_table)
    # The lead's UPDATE reads the invoice's RETURNING, so one row counted means both were
    # written (Model.save checks its row count the same way).
    sql = (
        f"WITH invoice_row AS (UPDATE {invoice_table} SET {invoice_set} "  # noqa: S608
        f"WHERE {qn('id')} = %s RETURNING 1) "
        f"UPDATE {lead_table} SET {lead_set} "
        f"WHERE {qn('id')} = %s AND EXISTS (SELECT 1 FROM invoice_row)"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, [*invoice_params, invoice.pk, *lead_params, lead.pk])
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")


def insert_student_and_payment(student: Student, payment: Payment) -> None:
    """INSERT the student and its first payment (whose student is `student`), giving both
    their ids. A unique violation of either raises IntegrityError, as Model.save would."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        student.save(force_insert=True)
        payment.student = student
        payment.save(force_insert=True)
        return
    qn = conn.ops.quote_name
    student_columns, student_params = _insert_values(conn, student, skip=())
    payment_columns, payment_params = _insert_values(conn, payment, skip=("student",))
    student_table, payment_table = qn(Student._meta.db_table), qn(Payment._meta.db_table)
    student_fk = qn(Payment._meta.get_field("student").column)  # type: ignore[arg-type]
    # VALUES rather than INSERT ... SELECT: its untyped parameters take the columns' types.
    sql = (
        f"WITH new_student AS (INSERT INTO {student_table} ({', '.join(student_columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(student_params))}) RETURNING {qn('id')}) "
        f"INSERT INTO {payment_table} ({student_fk}, {', '.join(payment_columns)}) "
        f"VALUES ((SELECT {qn('id')} FROM new_student), "
        f"{', '.join(['%s'] * len(payment_params))}) RETURNING {student_fk}, {qn('id')}"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, [*student_params, *payment_params])
        student_id, payment_id = cursor.fetchone()
    for instance, pk in ((student, student_id), (payment, payment_id)):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS
    payment.student = student


def _assignments(
    conn: BaseDatabaseWrapper, instance: Model, names: Sequence[str]
) -> tuple[str, list[Any]]:
    qn = conn.ops.quote_name
    meta = instance._meta
    parts, params = [], []
    for name in names:
        field = meta.get_field(name)
        value = field.pre_save(instance, False)  # type: ignore[union-attr] - a concrete field
        parts.append(f"{qn(cast(str, field.column))} = %s")
        params.append(field.get_db_prep_save(value, conn))  # type: ignore[union-attr]
    return ", ".join(parts), params


def _insert_values(
    conn: BaseDatabaseWrapper, instance: Model, *, skip: Sequence[str]
) -> tuple[list[str], list[Any]]:
    # The fields Model.save inserts: every concrete one but the generated id.
    qn = conn.ops.quote_name
    columns, params = [], []
    for field in instance._meta.local_concrete_fields:
        if field.primary_key or field.name in skip:
            continue
        columns.append(qn(cast(str, field.column)))
        params.append(field.get_db_prep_save(field.pre_save(instance, True), conn))
    return columns, params
