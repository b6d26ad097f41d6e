"""What pay-and-convert and a later payment answer, and how a student looks in the API.

The money services build the body here, inside their transaction, because the idempotency record
stores it with the payment: a replay answers with exactly these bytes.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.money import Currency, MoneyField
from core.representation import represent
from invoices.models import Invoice, InvoiceStatus
from invoices.responses import InvoiceOutputSerializer, invoice_body
from leads.models import Level
from payments.models import Payment, PaymentMethod, PaymentStatus, Student


class StudentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    student_id = serializers.CharField(source="student_code")
    name = serializers.CharField()
    email = serializers.CharField()
    whatsapp = serializers.CharField(help_text="E.164, such as +919847012345")
    level = serializers.ChoiceField(choices=Level.choices, allow_blank=True)
    batch = serializers.CharField(source="batch.code", default=None, allow_null=True)
    currency = serializers.ChoiceField(choices=Currency.choices)
    total_amount = MoneyField()
    total_paid = MoneyField()
    balance = MoneyField()
    payment_status = serializers.ChoiceField(choices=PaymentStatus.choices)
    lead_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class PaymentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = MoneyField()
    currency = serializers.ChoiceField(choices=Currency.choices)
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    transaction_id = serializers.CharField()
    status = serializers.CharField()
    invoice_id = serializers.IntegerField()
    student_id = serializers.CharField(source="student.student_code")
    paid_at = serializers.DateTimeField(help_text="When the payment was recorded.")
    paid_on = serializers.DateField(help_text="The day the money was received.")


class MoneyResultSerializer(serializers.Serializer):
    """The documented shape of a pay-and-convert or payment answer."""

    success = serializers.BooleanField()
    student_id = serializers.CharField()
    student = StudentOutputSerializer()
    payment = PaymentOutputSerializer()
    invoice = InvoiceOutputSerializer()
    invoice_status = serializers.ChoiceField(choices=InvoiceStatus.choices)


def money_result_body(*, invoice: Invoice, student: Student, payment: Payment) -> dict[str, Any]:
    """The answer to a payment; `invoice` as read by `invoices.selectors` after the payment."""
    invoice_data = invoice_body(invoice)
    return {
        "success": True,
        "student_id": student.student_code,
        "student": represent(StudentOutputSerializer, student),
        "payment": represent(PaymentOutputSerializer, payment),
        "invoice": invoice_data,
        "invoice_status": invoice_data["status"],
    }


def with_student_code(body: dict[str, Any], code: str) -> dict[str, Any]:
    """`body` (from money_result_body) with the student's code in every place the shape shows
    it. Pay-and-convert builds its answer before the code is drawn: see payments.services."""
    for part in (body, body["student"], body["payment"], body["invoice"]):
        part["student_id"] = code
    return body
