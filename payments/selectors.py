from __future__ import annotations

import datetime
from decimal import Decimal
from typing import TypedDict

from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from leads.validators import phone_search_text
from payments.models import Payment, Student


def student_list(*, q: str = "", payment_status: str = "") -> QuerySet[Student]:
    """Students with their batch, filtered by payment status and by name, code or number (`q`);
    the caller orders and pages."""
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
    """One student with their batch; Http404 when there is none with that id."""
    return get_object_or_404(Student.objects.select_related("batch"), pk=student_id)


def payments_received(*, day: datetime.date) -> QuerySet[Payment]:
    """Payments whose money was received on `day` (`paid_on`, not when they were entered: a
    transfer seen this morning and dated yesterday is yesterday's), the latest entered first,
    with their student and invoice."""
    return (
        Payment.objects.select_related("student", "invoice")
        .filter(paid_on=day)
        .order_by("-paid_at", "-pk")
    )


class CurrencyTotal(TypedDict):
    """The payments of one currency: their exact sum and how many."""

    currency: str
    total: Decimal
    count: int


def payment_totals(*, day: datetime.date) -> list[CurrencyTotal]:
    """[{"currency", "total", "count"}] of the payments received on `day`, by currency."""
    return list(
        Payment.objects.filter(paid_on=day)
        .values("currency")
        .annotate(total=Sum("amount"), count=Count("pk"))
        .order_by("currency")
    )
