"""Invoices as the API shows them: the one serializer behind every invoice body, including the
invoice inside a payment's answer (payments.responses)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.money import Currency, MoneyField
from core.representation import represent
from invoices.models import Invoice, InvoiceStatus
from leads.models import Level
from leads.selectors import lead_student_code


class ItemOutputSerializer(serializers.Serializer):
    description = serializers.CharField()
    amount = MoneyField()
    level = serializers.ChoiceField(choices=Level.choices, allow_blank=True)
    month = serializers.CharField()
    batch = serializers.CharField()


class InvoiceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    invoice_number = serializers.CharField(source="number")
    lead_id = serializers.IntegerField()
    lead_name = serializers.CharField(source="lead.name")
    student_id = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=InvoiceStatus.choices)
    currency = serializers.ChoiceField(choices=Currency.choices)
    subtotal = MoneyField()
    discount = MoneyField()
    total_amount = MoneyField()
    payable_now = MoneyField()
    paid_amount = MoneyField()
    remaining_amount = MoneyField()
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    notes = serializers.CharField()
    cancel_reason = serializers.CharField()
    items = ItemOutputSerializer(many=True, source="items.all")
    sent_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_student_id(self, invoice: Any) -> str | None:
        return lead_student_code(invoice.lead)


def invoice_body(invoice: Invoice) -> dict[str, Any]:
    """An invoice as the API shows it; pass one read by `invoices.selectors` (lead, student and
    items loaded)."""
    return represent(InvoiceOutputSerializer, invoice)
