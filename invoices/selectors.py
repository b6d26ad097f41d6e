from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from core import rows
from invoices.models import Invoice, InvoiceItem, InvoiceStatus


def invoice_list(
    *,
    status: str = "",
    lead_id: int | None = None,
    currency: str = "",
    q: str = "",
    past_due_on: datetime.date | None = None,
    with_items: bool = True,
) -> QuerySet[Invoice]:
    """Invoices with lead and student (and items, unless the caller shows none) loaded in a
    fixed number of queries. `q` matches the invoice number or the lead's name; `past_due_on`
    keeps the sent, unpaid invoices due before that day."""
    qs = Invoice.objects.select_related("lead", "lead__student")
    if with_items:
        qs = qs.prefetch_related(
            Prefetch("items", queryset=InvoiceItem.objects.order_by("position"))
        )
    if status:
        qs = qs.filter(status=status)
    if lead_id is not None:
        qs = qs.filter(lead_id=lead_id)
    if currency:
        qs = qs.filter(currency=currency)
    if q:
        qs = qs.filter(Q(number__icontains=q) | Q(lead__name__icontains=q))
    if past_due_on is not None:
        qs = qs.filter(status=InvoiceStatus.SENT, due_date__lt=past_due_on)
    return qs


def invoice_get(invoice_id: int) -> Invoice:
    """One invoice loaded as invoice_list loads it; Http404 when there is none with that id."""
    return get_object_or_404(invoice_list(), pk=invoice_id)


def invoice_for_payment(invoice_id: int) -> Invoice:
    """The few fields a money request names before it locks the invoice (id, number, lead,
    currency: its failure rows carry them); Http404 when there is none with that id. The money
    service reads the rest under its lock."""
    # Every money request reads it first: one statement made once per process, where building
    # it through the ORM cost more than running it. The other fields are deferred, as only()
    # leaves them.
    with rows.cursor(connections[DEFAULT_DB_ALIAS]) as cursor:
        cursor.execute(_for_payment_sql(), [invoice_id])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No Invoice matches the given query.")
    return rows.instance(Invoice, row, _FOR_PAYMENT)


_FOR_PAYMENT = ("id", "number", "lead", "currency")


@functools.cache
def _for_payment_sql() -> str:
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return (
        f"SELECT {rows.select_list(Invoice, 'i', _FOR_PAYMENT)} "  # noqa: S608
        f"FROM {qn(Invoice._meta.db_table)} i WHERE i.{qn('id')} = %s"
    )


def invoice_item_rows(invoice: Invoice) -> list[dict[str, Any]]:
    """The invoice's items by position, as the rows that invoice_generate, invoice_update and the
    invoice form take."""
    return [
        {
            "description": i.description,
            "amount": i.amount,
            "level": i.level,
            "month": i.month,
            "batch": i.batch,
        }
        for i in invoice.items.all()
    ]


def invoice_with_payments_get(invoice_id: int) -> Invoice:
    """An invoice for its page, with its payments (newest first) and who recorded each."""
    # Payments point at invoices; going through the reverse relation keeps this app from
    # importing the payments app.
    payment_model = Invoice._meta.get_field("payments").related_model
    qs = invoice_list().prefetch_related(
        Prefetch("payments", queryset=payment_model._default_manager.select_related("recorded_by"))
    )
    return get_object_or_404(qs, pk=invoice_id)


def invoices_past_due(*, today: datetime.date) -> QuerySet[Invoice]:
    """Invoices sent and not paid at all whose due date has passed, the longest overdue first."""
    return invoice_list(past_due_on=today, with_items=False).order_by("due_date", "pk")


def invoice_numbers(ids: Iterable[int]) -> dict[int, str]:
    """{id: invoice number} of these invoices, in one query (the audit feed's entity names)."""
    return dict(Invoice.objects.filter(pk__in=list(ids)).order_by().values_list("pk", "number"))
