"""A conversion's statements on PostgreSQL, written out once per process, and its writes two
at a time (each pair one statement, a WITH).

Every round trip of a conversion is a wake-up of the database's process and of ours; on a busy
machine each costs more than the statement itself, and building a statement through the ORM
costs more than sending it (bench/pay_and_convert.py). So the locked read of the invoice and
its lead, and that of its items, are SQL made once from the models' fields, whose rows become
instances through Model.from_db as the ORM's own would; the invoice and the lead are updated by
one statement, the student and its payment inserted by another, with the values Model.save
would send (core.rows). Elsewhere (SQLite) the same through the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import cast

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Field, OuterRef, Prefetch, Subquery, prefetch_related_objects

from core import rows
from invoices.models import Invoice, InvoiceItem
from leads.models import Lead
from payments.models import Payment, Student


def locked_invoice(invoice_id: int) -> Invoice:
    """The invoice and its lead, both locked by one SELECT ... FOR UPDATE, with the code of the
    student who already has the lead's WhatsApp number (`whatsapp_holder`, None if nobody) and
    the items by position (prefetched, as `invoice.items.all()` gives them). Invoice.DoesNotExist
    when there is none with that id.

    Lock order everywhere: invoice, then lead, then counters/batch (PostgreSQL locks the rows of
    a join in the order of its FROM list). Two requests for the same invoice queue on the
    invoice row; a second invoice of the same lead queues on the lead row, and once it has the
    lock it reads the lead as the first request left it (converted).
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        return _locked_invoice_orm(invoice_id)
    with rows.cursor(conn) as cursor:
        cursor.execute(_lock_sql(), [invoice_id])
        row = cursor.fetchone()
        if row is None:
            raise Invoice.DoesNotExist("Invoice matching query does not exist.")
        # After the lock: nobody can change the items of an invoice we hold. Read by a statement
        # of their own, not a subquery of the lock's: that one would read them as they were
        # before the lock's wait, in the snapshot its statement started with.
        cursor.execute(_items_sql(), [invoice_id])
        item_rows = cursor.fetchall()
    n = len(Invoice._meta.concrete_fields)
    invoice = rows.instance(Invoice, row[:n])
    # As the ORM's annotation names it.
    invoice.whatsapp_holder = row[n]  # type: ignore[attr-defined]
    lead = rows.instance(Lead, row[n + 1 :])
    Invoice._meta.get_field("lead").set_cached_value(invoice, lead)
    items = [rows.instance(InvoiceItem, values) for values in item_rows]
    item_invoice = InvoiceItem._meta.get_field("invoice")
    for item in items:
        item_invoice.set_cached_value(item, invoice)
    # What prefetch_related leaves on the invoice (django.db.models.query.prefetch_one_level).
    queryset = invoice.items.all()
    queryset._result_cache = items
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    invoice._prefetched_objects_cache = {"items": queryset}  # type: ignore[attr-defined]
    return invoice


def _locked_invoice_orm(invoice_id: int) -> Invoice:
    holder = Student.objects.filter(whatsapp=OuterRef("lead__whatsapp")).values("student_code")
    invoice = (
        Invoice.objects.select_for_update()
        .select_related("lead")
        .annotate(whatsapp_holder=Subquery(holder[:1]))
        .get(pk=invoice_id)
    )
    prefetch_related_objects(
        [invoice], Prefetch("items", queryset=InvoiceItem.objects.order_by("position"))
    )
    return invoice


@functools.cache
def _lock_sql() -> str:
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    whatsapp = qn("whatsapp")
    # Identifiers come from the models, values are parameters. The WhatsApp number is unique
    # among students: at most one holder.
    return (
        f"SELECT {rows.select_list(Invoice, 'i')}, "  # noqa: S608
        f"(SELECT s.{qn('student_code')} FROM {qn(Student._meta.db_table)} s "
        f"WHERE s.{whatsapp} = l.{whatsapp} LIMIT 1), {rows.select_list(Lead, 'l')} "
        f"FROM {qn(Invoice._meta.db_table)} i INNER JOIN {qn(Lead._meta.db_table)} l "
        f"ON i.{qn('lead_id')} = l.{qn('id')} WHERE i.{qn('id')} = %s FOR UPDATE"
    )


@functools.cache
def _items_sql() -> str:
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return (
        f"SELECT {rows.select_list(InvoiceItem, 'it')} "  # noqa: S608
        f"FROM {qn(InvoiceItem._meta.db_table)} it "
        f"WHERE it.{qn('invoice_id')} = %s ORDER BY it.{qn('position')}"
    )


def update_invoice_and_lead(
    invoice: Invoice, invoice_fields: Sequence[str], lead: Lead, lead_fields: Sequence[str]
) -> None:
    """Save these fields of the invoice and of its lead (both locked by the caller)."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        invoice.save(update_fields=invoice_fields)
        lead.save(update_fields=lead_fields)
        return
    invoice_set, invoice_params = rows.assignments(invoice, invoice_fields)
    lead_set, lead_params = rows.assignments(lead, lead_fields)
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
    with rows.cursor(conn) as cursor:
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
    student_columns, student_params = rows.insert_values(student)
    payment_columns, payment_params = rows.insert_values(payment, skip=("student",))
    student_table, payment_table = qn(Student._meta.db_table), qn(Payment._meta.db_table)
    student_fk = qn(cast(str, cast(Field, Payment._meta.get_field("student")).column))
    # VALUES rather than INSERT ... SELECT: its untyped parameters take the columns' types.
    sql = (
        f"WITH new_student AS (INSERT INTO {student_table} ({', '.join(student_columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(student_params))}) RETURNING {qn('id')}) "
        f"INSERT INTO {payment_table} ({student_fk}, {', '.join(payment_columns)}) "
        f"VALUES ((SELECT {qn('id')} FROM new_student), "
        f"{', '.join(['%s'] * len(payment_params))}) RETURNING {student_fk}, {qn('id')}"
    )
    with rows.cursor(conn) as cursor:
        cursor.execute(sql, [*student_params, *payment_params])
        student_id, payment_id = cursor.fetchone()
    student.pk, payment.pk = student_id, payment_id
    rows.saved(student)
    rows.saved(payment)
    payment.student = student
