from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TypedDict

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from leads.models import Lead, LeadStatus
from leads.validators import phone_search_text

# A lead in these states needs no follow-up, whatever date it still carries.
CLOSED_STATUSES = (LeadStatus.CONVERTED, LeadStatus.LOST)


def _with_whatsapp_holder(qs: QuerySet[Lead]) -> QuerySet[Lead]:
    """Each lead with the student (other than the one it became) who has its WhatsApp number.

    Leads may share a number, students may not: staff are told while they can still correct
    the lead, not first at conversion. Correlated subqueries on the students' unique whatsapp
    index, so a page of leads stays one query. Reached through the lead that became the
    student (the reverse `student` relation), as lead_student_code does: leads import nothing
    from payments.
    """
    holder = (
        Lead.objects.filter(student__whatsapp=OuterRef("whatsapp"))
        .exclude(pk=OuterRef("pk"))
        .order_by()
    )
    return qs.annotate(
        whatsapp_student_pk=Subquery(holder.values("student__pk")[:1]),
        whatsapp_student_code=Subquery(holder.values("student__student_code")[:1]),
        whatsapp_student_name=Subquery(holder.values("student__name")[:1]),
    )


def lead_list(
    *,
    status: str = "",
    q: str = "",
    converted: bool | None = None,
    follow_up_due_on: datetime.date | None = None,
    with_number_holder: bool = True,
) -> QuerySet[Lead]:
    """Leads with their student (if any) and, unless the caller shows no warning, the student
    holding their number, filtered; the caller orders and pages. `follow_up_due_on` keeps the
    open leads whose follow-up date is that day or earlier."""
    qs = Lead.objects.select_related("student")
    if with_number_holder:
        # Three correlated subqueries per row: worth it for the rows shown, not for a page
        # query that also counts (it would run them for every matching row).
        qs = _with_whatsapp_holder(qs)
    if follow_up_due_on is not None:
        qs = qs.filter(follow_up_date__lte=follow_up_due_on).exclude(status__in=CLOSED_STATUSES)
    if status:
        qs = qs.filter(status=status)
    if converted is not None:
        qs = qs.filter(converted=converted)
    if q:
        match = (
            Q(name__icontains=q)
            | Q(email__icontains=q)
            | Q(whatsapp__icontains=q)
            | Q(phone__icontains=q)
        )
        number = phone_search_text(q)
        if number:
            match |= Q(whatsapp__contains=number) | Q(phone__contains=number)
        qs = qs.filter(match)
    return qs


def lead_get(lead_id: int) -> Lead:
    """One lead with its student and the student holding its number; Http404 when none."""
    return get_object_or_404(
        _with_whatsapp_holder(Lead.objects.select_related("student")), pk=lead_id
    )


def lead_student_code(lead: Lead) -> str | None:
    """The code of the student this lead became (an invoice's student is its lead's), or None.

    Pass a lead read with `student` joined (lead_list, lead_get, invoices.selectors)."""
    student = getattr(lead, "student", None) if lead.converted else None
    return student.student_code if student is not None else None


class WhatsappHolder(TypedDict):
    """The student who has a lead's WhatsApp number: id, student code and name."""

    id: int
    student_id: str
    name: str


def lead_whatsapp_holder(lead: Lead) -> WhatsappHolder | None:
    """The student who already has this lead's WhatsApp number, from the annotation above."""
    # getattr: the annotations are no attributes of Lead to mypy.
    pk = getattr(lead, "whatsapp_student_pk", None)
    if pk is None:
        return None
    return {
        "id": pk,
        "student_id": getattr(lead, "whatsapp_student_code", ""),
        "name": getattr(lead, "whatsapp_student_name", ""),
    }


def follow_ups_due(*, today: datetime.date) -> QuerySet[Lead]:
    """The open leads to contact today: follow-up date today or earlier, the oldest first."""
    return Lead.objects.filter(follow_up_date__lte=today).exclude(status__in=CLOSED_STATUSES)


def lead_names(ids: Iterable[int]) -> dict[int, str]:
    """{id: name} of these leads, in one query (the audit feed's entity names)."""
    return dict(Lead.objects.filter(pk__in=list(ids)).order_by().values_list("pk", "name"))
