from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import TypedDict

from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from core.money import format_money
from leads.validators import phone_search_text
from payments.models import Batch, Payment, Student


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


def student_labels(ids: Iterable[int]) -> dict[int, str]:
    """{id: "PB-S-0001 (name)"} of these students, in one query (the audit feed's names)."""
    rows = (
        Student.objects.filter(pk__in=list(ids))
        .order_by()
        .values_list("pk", "student_code", "name")
    )
    return {pk: f"{code} ({name})" for pk, code, name in rows}


def payment_labels(ids: Iterable[int]) -> dict[int, str]:
    """{id: "€100.00 on PB-2026-0007"} of these payments, in one query with their invoices."""
    rows = (
        Payment.objects.filter(pk__in=list(ids))
        .order_by()
        .values_list("pk", "amount", "currency", "invoice__number")
    )
    return {pk: f"{format_money(amount, cur)} on {number}" for pk, amount, cur, number in rows}


def batch_codes(ids: Iterable[int]) -> dict[int, str]:
    """{id: code} of these batches, in one query (the audit feed's entity names)."""
    return dict(Batch.objects.filter(pk__in=list(ids)).order_by().values_list("pk", "code"))


def invoice_payment_ids(invoice_id: int) -> list[int]:
    """The ids of an invoice's payments (its foreign key's index): an invoice's history in the
    audit trail includes their rows."""
    return list(Payment.objects.filter(invoice_id=invoice_id).values_list("pk", flat=True))
