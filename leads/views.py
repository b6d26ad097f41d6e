from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import is_founder, money_staff_required
from audit.access import read_words, record_access
from audit.selectors import data_access_list
from core.errors import ApplicationError
from core.forms import add_service_error
from core.listing import Sort, in_choice_order, list_page
from core.timefmt import school_today
from leads import selectors, services
from leads.forms import LeadFilterForm, LeadForm
from leads.models import Lead, LeadStatus
from leads.validators import format_phone


def _warn_if_a_student_has_the_number(request: HttpRequest, lead: Lead) -> None:
    """Said when the number is saved, while the lead can still be corrected, rather than
    first at conversion, once the money has been received."""
    lead = selectors.lead_get(lead.pk)
    holder = selectors.lead_whatsapp_holder(lead)
    if holder is None:
        return
    messages.warning(
        request,
        format_html(
            'WhatsApp {} already belongs to student <a href="{}">{} {}</a>. Leads may share a '
            "number, but this lead cannot become a student until its number is changed.",
            format_phone(lead.whatsapp),
            f"{reverse('payments:students')}?{urlencode({'q': holder['student_id']})}",
            holder["student_id"],
            holder["name"],
        ),
    )


LEAD_SORTS = {
    "name": Sort("Name", ("name",)),
    "status": Sort(
        "Status",
        (in_choice_order("status", LeadStatus.values),),
        "first step first",
        "last step first",
    ),
    "follow_up": Sort("Follow-up", ("follow_up_date",), "earliest first", "latest first"),
    "created": Sort("Created", ("created_at",), "oldest first", "newest first"),
}


@money_staff_required
@require_GET
def lead_list(request: HttpRequest) -> HttpResponse:
    def rows(data: dict[str, Any]) -> QuerySet[Lead]:
        return selectors.lead_list(
            status=data["status"],
            q=data["q"],
            converted={"true": True, "false": False}.get(data["converted"]),
            follow_up_due_on=school_today() if data["follow_up"] == "due" else None,
            with_number_holder=False,
        )

    context, status = list_page(
        request.GET,
        filters=LeadFilterForm(request.GET),
        sorts=LEAD_SORTS,
        default_sort="-created",
        rows=rows,
    )
    return render(request, "leads/lead_list.html", context, status=status)


@money_staff_required
@require_http_methods(["GET", "POST"])
def lead_create(request: HttpRequest) -> HttpResponse:
    form = LeadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        lead = services.lead_create(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Lead {lead.name} created.")
        _warn_if_a_student_has_the_number(request, lead)
        return redirect("leads:detail", lead_id=lead.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "leads/lead_form.html", {"form": form, "lead": None}, status=status)


@money_staff_required
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_get(lead_id)
    invoices = lead.invoices.order_by("-created_at", "-id")
    # A converted lead's page is its student's page too (the student list links here).
    student_id = lead.student.pk if lead.converted else None
    entities = [("Lead", lead.pk)] + ([("Student", student_id)] if student_id else [])
    context: dict[str, Any] = {"lead": lead, "invoices": invoices}
    if student_id:
        # Through the reverse relation: this app does not import the payments app.
        context["student_payments"] = lead.student.payments.select_related("invoice")
    if is_founder(request.user):
        # The entities by name, as the page itself names them, and each read in words.
        names = {("Lead", str(lead.pk)): lead.name}
        if student_id:
            names[("Student", str(student_id))] = (
                f"{lead.student.student_code} ({lead.student.name})"
            )
        accesses = data_access_list(entities=entities)
        for row in accesses:
            row.entity_name = names.get((row.entity_type, row.entity_id), row.entity_id)  # type: ignore[attr-defined]
            row.read_words = read_words(row.metadata)  # type: ignore[attr-defined]
        context["accesses"] = accesses
    response = render(request, "leads/lead_detail.html", context)
    record_access(entity_type="Lead", entity_id=lead.pk, what="lead_detail", via="page")
    if student_id:
        record_access(
            entity_type="Student", entity_id=student_id, what="student_detail", via="page"
        )
    return response


@money_staff_required
@require_http_methods(["GET", "POST"])
def lead_edit(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_get(lead_id)
    if lead.converted and request.method == "GET":
        messages.error(request, "This lead has become a student; it can no longer be changed.")
        return redirect("leads:detail", lead_id=lead.pk)
    form = LeadForm(request.POST or None, initial=LeadForm.initial_for(lead))
    if request.method == "POST" and form.is_valid():
        try:
            services.lead_update(lead=lead, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "Lead saved.")
            _warn_if_a_student_has_the_number(request, lead)
            return redirect("leads:detail", lead_id=lead.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "leads/lead_form.html", {"form": form, "lead": lead}, status=status)


@money_staff_required
@require_POST
def lead_delete(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_get(lead_id)
    try:
        services.lead_delete(lead=lead, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("leads:detail", lead_id=lead.pk)
    messages.success(request, f"Lead {lead.name} deleted.")
    return redirect("leads:list")
