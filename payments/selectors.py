from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from leads.validators import phone_search_text
from payments.models import Batch, Student


def student_list(*, q: str = "", payment_status: str = "") -> QuerySet[Student]:
    qs = Student.objects.select_related("batch")
    if payment_status:
        qs = qs.filter(payment_status=payment_status)
    if q:
        match = Q(name__icontains=q) | Q(student_code__icontains=q) | Q(whatsapp__icontains=q)
        number = phone_search_text(q)
        if number:
            match |= Q(whatsapp__contains=number)
        qs = qs.filter(match)
    return qs


def student_get(student_id: int) -> Student:
    return get_object_or_404(Student.objects.select_related("batch"), pk=student_id)


def batches_with_seats() -> QuerySet[Batch]:
    return Batch.objects.order_by("code")
