from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import money_staff_required
from audit.access import record_access
from core.errors import ApplicationError
from core.forms import add_service_error
from core.listing import Sort, in_choice_order, list_page
from core.timefmt import school_today
from invoices import pdf, selectors, services
from invoices.forms import CancelForm, InvoiceFilterForm, InvoiceForm, ItemFormSet
from invoices.models import OPEN_STATUSES, Invoice, InvoiceStatus
from leads.selectors import lead_get, lead_student_code


@money_staff_required
@require_http_methods(["GET", "POST"])
def invoice_create(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(lead_id)
    form = InvoiceForm(request.POST or None, initial={"currency": "EUR"})
    items = ItemFormSet(request.POST or None, prefix="items")
    if request.method == "POST" and form.is_valid() & items.is_valid():
        rows = _item_rows(items)
        data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        try:
            invoice = services.invoice_generate(lead=lead, items=rows, actor=request.user, **data)
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Invoice {invoice.number} generated.")
            return redirect("invoices:detail", invoice_id=invoice.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "invoices/invoice_form.html",
        {"form": form, "items": items, "lead": lead},
        status=status,
    )


@money_staff_required
@require_http_methods(["GET", "POST"])
def invoice_edit(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_get(invoice_id)
    if invoice.status not in OPEN_STATUSES:
        messages.error(
            request, f"A {invoice.get_status_display().lower()} invoice cannot be edited."
        )
        return redirect("invoices:detail", invoice_id=invoice.pk)
    form = InvoiceForm(
        request.POST or None,
        initial={
            "currency": invoice.currency,
            "discount": invoice.discount,
            "payable_now": invoice.payable_now,
            "due_date": invoice.due_date,
            "notes": invoice.notes,
        },
    )
    items = ItemFormSet(
        request.POST or None,
        prefix="items",
        initial=selectors.invoice_item_rows(invoice),
    )
    if request.method == "POST" and form.is_valid() & items.is_valid():
        data = dict(form.cleaned_data)
        data["discount"] = data["discount"] or Decimal("0.00")
        if not data["due_date"]:
            del data["due_date"]
        # An emptied "payable now" means the whole total, as when generating.
        try:
            services.invoice_update(
                invoice=invoice, actor=request.user, items=_item_rows(items), **data
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Invoice {invoice.number} saved.")
            return redirect("invoices:detail", invoice_id=invoice.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "invoices/invoice_form.html",
        {"form": form, "items": items, "lead": invoice.lead, "invoice": invoice},
        status=status,
    )


def _item_rows(items: Any) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
        for f in items
        if f.cleaned_data and (f.has_changed() or f.initial) and not f.cleaned_data.get("DELETE")
    ]


INVOICE_SORTS = {
    "number": Sort("Number", ("year", "sequence"), "first issued first", "last issued first"),
    "lead": Sort("Lead", ("lead__name",)),
    "status": Sort(
        "Status",
        (in_choice_order("status", InvoiceStatus.values),),
        "draft first",
        "cancelled first",
    ),
    # Amounts are compared within a currency: EUR invoices, then INR ones.
    "amount": Sort("Total", ("currency", "total_amount"), "smallest first", "largest first"),
    "due": Sort("Due", ("due_date",), "earliest first", "latest first"),
    "issued": Sort("Issued", ("issue_date", "created_at"), "oldest first", "newest first"),
}


@money_staff_required
@require_GET
def invoice_list(request: HttpRequest) -> HttpResponse:
    def rows(data: dict[str, Any]) -> QuerySet[Invoice]:
        return selectors.invoice_list(
            status=data["status"],
            currency=data["currency"],
            q=data["q"],
            past_due_on=school_today() if data["overdue"] else None,
            with_items=False,
        )

    context, status = list_page(
        request.GET,
        filters=InvoiceFilterForm(request.GET),
        sorts=INVOICE_SORTS,
        default_sort="-issued",
        rows=rows,
    )
    context["today"] = school_today()
    return render(request, "invoices/invoice_list.html", context, status=status)


@money_staff_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_with_payments_get(invoice_id)
    context = {
        "invoice": invoice,
        "payments": invoice.payments.all(),
        "student_code": lead_student_code(invoice.lead),
        "is_open": invoice.status in OPEN_STATUSES,
        "can_record_payment": invoice.status == InvoiceStatus.PARTIALLY_PAID,
        "cancel_form": CancelForm(),
    }
    return render(request, "invoices/invoice_detail.html", context)


@money_staff_required
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_get(invoice_id)
    response = HttpResponse(pdf.render_invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    record_access(entity_type="Invoice", entity_id=invoice.pk, what="invoice_pdf", via="page")
    return response


@money_staff_required
@require_POST
def invoice_send(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_get(invoice_id)
    try:
        services.invoice_send(invoice=invoice, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invoice {invoice.number} e-mailed to {invoice.lead.email}.")
    return redirect("invoices:detail", invoice_id=invoice.pk)


@money_staff_required
@require_POST
def invoice_cancel(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_get(invoice_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("reason", []):
            messages.error(request, f"The invoice was not cancelled: {error}")
        return redirect("invoices:detail", invoice_id=invoice.pk)
    try:
        services.invoice_cancel(
            invoice=invoice, reason=form.cleaned_data["reason"], actor=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invoice {invoice.number} cancelled.")
    return redirect("invoices:detail", invoice_id=invoice.pk)
