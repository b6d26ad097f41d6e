from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from leads.models import Lead


def lead_list(*, status: str = "", q: str = "", converted: bool | None = None) -> QuerySet[Lead]:
    """Leads with their student (if any) joined, filtered; the caller orders and pages."""
    qs = Lead.objects.select_related("student")
    if status:
        qs = qs.filter(status=status)
    if converted is not None:
        qs = qs.filter(converted=converted)
    if q:
        qs = qs.filter(
            Q(name__icontains=q)
            | Q(email__icontains=q)
            | Q(whatsapp__icontains=q)
            | Q(phone__icontains=q)
        )
    return qs


def lead_get(lead_id: int) -> Lead:
    return get_object_or_404(Lead.objects.select_related("student"), pk=lead_id)


def lead_student_code(lead: Lead) -> str | None:
    student = getattr(lead, "student", None) if lead.converted else None
    return student.student_code if student is not None else None
