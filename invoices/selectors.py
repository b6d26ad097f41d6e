from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from invoices.models import Invoice, InvoiceItem


def invoice_list(*, status: str = "", lead_id: int | None = None) -> QuerySet[Invoice]:
    """Invoices with lead, student and items loaded in a fixed number of queries."""
    qs = Invoice.objects.select_related("lead", "lead__student").prefetch_related(
        Prefetch("items", queryset=InvoiceItem.objects.order_by("position"))
    )
    if status:
        qs = qs.filter(status=status)
    if lead_id is not None:
        qs = qs.filter(lead_id=lead_id)
    return qs


def invoice_get(invoice_id: int) -> Invoice:
    return get_object_or_404(invoice_list(), pk=invoice_id)


def invoice_with_payments_get(invoice_id: int) -> Invoice:
    """An invoice for its page, with its payments (newest first) and who recorded each."""
    # Payments point at invoices; going through the reverse relation keeps this app from
    # importing the payments app.
    payment_model = Invoice._meta.get_field("payments").related_model
    qs = invoice_list().prefetch_related(
        Prefetch("payments", queryset=payment_model.objects.select_related("recorded_by"))
    )
    return get_object_or_404(qs, pk=invoice_id)


def invoice_student_code(invoice: Invoice) -> str | None:
    lead = invoice.lead
    student = getattr(lead, "student", None) if lead.converted else None
    return student.student_code if student is not None else None
