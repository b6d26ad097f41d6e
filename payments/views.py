from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import money_staff_required
from core.errors import ApplicationError
from core.forms import add_service_error
from core.listing import Sort, in_choice_order, list_page
from core.money import format_money
from invoices.selectors import invoice_get
from invoices.views import invoice_page
from leads.selectors import lead_get, lead_whatsapp_holder
from payments import selectors, services
from payments.forms import PayAndConvertForm, PaymentForm, StudentFilterForm
from payments.models import PaymentStatus, Student

REUSED_FORM = (
    "This form was already submitted with other values. Check the invoice below before "
    "recording anything else; the form has been reset."
)


def _money_form_view(request: HttpRequest, invoice_id: int, *, convert: bool) -> HttpResponse:
    invoice = invoice_get(invoice_id)
    form_class = PayAndConvertForm if convert else PaymentForm
    form = form_class(request.POST) if request.method == "POST" else form_class.fresh()
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            common = {
                "invoice": invoice,
                "method": data["method"],
                "transaction_id": data["transaction_id"],
                "paid_on": data["paid_on"],
                "idempotency_key": data["idempotency_key"],
                "actor": request.user,
            }
            try:
                if convert:
                    batch = data.get("batch")
                    outcome = services.pay_and_convert(
                        amount=data["paid_amount"], batch_id=batch.pk if batch else None, **common
                    )
                else:
                    outcome = services.payment_record(amount=data["amount"], **common)
            except ApplicationError as exc:
                if exc.code == "idempotency_key_reused":
                    messages.error(request, REUSED_FORM)
                    return redirect("invoices:detail", invoice_id=invoice.pk)
                if exc.code == "already_converted":
                    # Someone converted this lead first: one message, on the invoice as it is
                    # now, instead of a form that invites a second try.
                    amount = format_money(data["paid_amount"], invoice.currency)
                    return invoice_page(
                        request,
                        invoice.pk,
                        error=(
                            f"Your payment of {amount} was not recorded: someone else converted "
                            f"{invoice.lead.name} a moment ago. Check the "
                            "payments below before recording anything more."
                        ),
                        status=409,
                    )
                add_service_error(form, exc)
            else:
                if outcome.replayed:
                    messages.info(request, "This payment was already recorded; nothing was added.")
                elif convert:
                    messages.success(
                        request,
                        f"Payment recorded. {invoice.lead.name} is now student "
                        f"{outcome.body['student_id']}.",
                    )
                else:
                    messages.success(request, "Payment recorded.")
                return redirect("invoices:detail", invoice_id=invoice.pk)
    context = {"form": form, "invoice": invoice}
    if convert:
        # Before the money is recorded, not first in the refusal after it.
        context["whatsapp_holder"] = lead_whatsapp_holder(lead_get(invoice.lead_id))
    template = "payments/pay_and_convert.html" if convert else "payments/payment_form.html"
    return render(request, template, context, status=status)


@money_staff_required
@require_http_methods(["GET", "POST"])
def pay_and_convert(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return _money_form_view(request, invoice_id, convert=True)


@money_staff_required
@require_http_methods(["GET", "POST"])
def payment_create(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return _money_form_view(request, invoice_id, convert=False)


STUDENT_SORTS = {
    "code": Sort("Code", ("student_code",), "first enrolled first", "last enrolled first"),
    "name": Sort("Name", ("name",)),
    "status": Sort(
        "Payment",
        (in_choice_order("payment_status", PaymentStatus.values),),
        "pending first",
        "overdue first",
    ),
    "created": Sort("Created", ("created_at",), "oldest first", "newest first"),
}


@money_staff_required
@require_GET
def student_list(request: HttpRequest) -> HttpResponse:
    def rows(data: dict[str, Any]) -> QuerySet[Student]:
        return selectors.student_list(q=data["q"], payment_status=data["payment_status"])

    context, status = list_page(
        request.GET,
        filters=StudentFilterForm(request.GET),
        sorts=STUDENT_SORTS,
        default_sort="-created",
        rows=rows,
    )
    return render(request, "payments/student_list.html", context, status=status)
