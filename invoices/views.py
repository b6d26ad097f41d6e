from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.forms import BaseFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import money_staff_required
from audit.access import record_access
from core.errors import ApplicationError
from core.forms import add_service_error
from core.listing import Sort, in_choice_order, list_page
from core.money import Currency, money_locale
from core.timefmt import school_today
from invoices import pdf, selectors, services
from invoices.forms import CancelForm, InvoiceFilterForm, InvoiceForm, ItemFormSet
from invoices.models import OPEN_STATUSES, Invoice, InvoiceItem, InvoiceStatus
from leads.selectors import lead_get, lead_student_code

ITEMS_PREFIX = "items"


def _items_formset(request: HttpRequest, initial: list[dict[str, Any]]) -> tuple[BaseFormSet, bool]:
    """The item rows, and whether the POST only added or removed a row (the page's buttons
    without the script): then the form is shown again with the change, and nothing is saved."""
    if request.method != "POST":
        return ItemFormSet(prefix=ITEMS_PREFIX, initial=initial), False
    data = request.POST
    if "add_row" in data or "remove_row" in data:
        data = _rows_changed(data, remove=data.get("remove_row"))
        return ItemFormSet(data, prefix=ITEMS_PREFIX, initial=initial), True
    return ItemFormSet(data, prefix=ITEMS_PREFIX, initial=initial), False


def _rows_changed(post: Any, *, remove: str | None) -> Any:
    """The POST as if one row had been appended, or row `remove` taken out (later rows move up)."""
    data = post.copy()
    total_key, initial_key = f"{ITEMS_PREFIX}-TOTAL_FORMS", f"{ITEMS_PREFIX}-INITIAL_FORMS"
    try:
        total = min(int(data.get(total_key, "0")), services.MAX_ITEMS)
        initial = int(data.get(initial_key, "0"))
    except ValueError:
        return post  # a broken management form: the formset says so
    if remove is None:
        data[total_key] = str(min(total + 1, services.MAX_ITEMS))
        return data
    if not remove.isdigit() or not 0 <= int(remove) < total or total <= 1:
        return post
    index = int(remove)
    names = list(ItemFormSet.form.base_fields)
    for i in range(index, total - 1):
        for name in names:
            data[f"{ITEMS_PREFIX}-{i}-{name}"] = post.get(f"{ITEMS_PREFIX}-{i + 1}-{name}", "")
    for name in names:
        data.pop(f"{ITEMS_PREFIX}-{total - 1}-{name}", None)
    data[total_key] = str(total - 1)
    if index < initial:
        data[initial_key] = str(initial - 1)
    return data


def _lead_item_defaults(lead: Any) -> dict[str, Any]:
    """The first row of a new invoice: the level, month and batch of the lead's last invoice,
    else the level the lead is interested in."""
    last = (
        InvoiceItem.objects.filter(invoice__lead=lead)
        .order_by("-invoice__created_at", "-invoice_id", "position")
        .values("description", "level", "month", "batch")
        .first()
    )
    if last:
        return dict(last)
    return {"level": lead.interested_level}


def _form_context(
    form: InvoiceForm, items: Any, lead: Any, invoice: Invoice | None = None
) -> dict[str, Any]:
    return {
        "form": form,
        "items": items,
        "lead": lead,
        "invoice": invoice,
        # The batch timings written on invoices before, offered as suggestions (a datalist).
        "batch_suggestions": list(
            InvoiceItem.objects.exclude(batch="")
            .order_by("batch")
            .values_list("batch", flat=True)
            .distinct()[:30]
        ),
        "money_locales": {c: money_locale(c) for c in Currency.values},
    }


@money_staff_required
@require_http_methods(["GET", "POST"])
def invoice_create(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(lead_id)
    form = InvoiceForm(request.POST or None, initial={"currency": "EUR"})
    items, rows_only = _items_formset(request, [_lead_item_defaults(lead)])
    if rows_only:
        return render(request, "invoices/invoice_form.html", _form_context(form, items, lead))
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
        request, "invoices/invoice_form.html", _form_context(form, items, lead), status=status
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
            # Empty when it is the whole total, as when generating: the edit then asks for the
            # new total if items change, instead of keeping a figure the new total may be below.
            "payable_now": (
                None if invoice.payable_now == invoice.total_amount else invoice.payable_now
            ),
            "due_date": invoice.due_date,
            "notes": invoice.notes,
        },
    )
    items, rows_only = _items_formset(request, selectors.invoice_item_rows(invoice))
    context = _form_context(form, items, invoice.lead, invoice)
    if rows_only:
        return render(request, "invoices/invoice_form.html", context)
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
    return render(request, "invoices/invoice_form.html", context, status=status)


def _item_rows(items: Any) -> list[dict[str, Any]]:
    # A row left blank is no item; a row shown filled in (an edited invoice's) always is.
    return [
        dict(f.cleaned_data) for f in items if f.cleaned_data and (f.has_changed() or f.initial)
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


def invoice_state(invoice: Invoice, student_code: str | None) -> dict[str, Any]:
    """What the invoice's page offers in its present state, and a plain sentence for what it
    does not: the same rules the services enforce, so the page never offers a refused action."""
    is_open = invoice.status in OPEN_STATUSES
    converted_elsewhere = is_open and invoice.lead.converted
    state: dict[str, Any] = {
        "is_open": is_open,
        "can_edit": is_open,
        "can_cancel": is_open,
        "can_send": is_open and bool(invoice.lead.email),
        "can_convert": is_open and not converted_elsewhere,
        "can_record_payment": invoice.status == InvoiceStatus.PARTIALLY_PAID,
    }
    lead = invoice.lead.name
    if converted_elsewhere:
        note = (
            f"{lead} is already student {student_code} through another invoice, so this one "
            "cannot convert them again. Cancel it if it is no longer needed."
        )
    elif invoice.status == InvoiceStatus.PARTIALLY_PAID:
        note = (
            f"{lead} became student {student_code} with the first payment, so there is nothing "
            "left to convert. Record each further payment here. An invoice that has received "
            "money can no longer be edited or cancelled."
        )
    elif invoice.status == InvoiceStatus.PAID:
        note = (
            f"Paid in full: {lead} is student {student_code}. There is nothing left to record, "
            "edit or cancel."
        )
    elif invoice.status == InvoiceStatus.CANCELLED:
        note = "Cancelled: no payment can be recorded on it. Its number stays used."
    else:
        note = ""
    state["state_note"] = note
    return state


@money_staff_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return invoice_page(request, invoice_id)


class _Notice(str):
    """A message shown once on this page only, shaped like django.contrib.messages' own."""

    tags = "error"
    level = messages.ERROR


def invoice_page(
    request: HttpRequest, invoice_id: int, *, error: str | None = None, status: int = 200
) -> HttpResponse:
    """The invoice's page; with `error`, that one message replaces the session's messages, which
    stay for the page they were meant for (another tab's success must not appear beside it)."""
    invoice = selectors.invoice_with_payments_get(invoice_id)
    student_code = lead_student_code(invoice.lead)
    context = {
        "invoice": invoice,
        "payments": invoice.payments.all(),
        "student_code": student_code,
        "cancel_form": CancelForm(),
        "today": school_today(),
        **invoice_state(invoice, student_code),
    }
    if error is not None:
        context["messages"] = [_Notice(error)]
    return render(request, "invoices/invoice_detail.html", context, status=status)


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
