from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.money import Currency, amount_field
from leads.models import Lead, Level


class InvoiceStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    SENT = "SENT", "Sent"
    PARTIALLY_PAID = "PARTIALLY_PAID", "Partially paid"
    PAID = "PAID", "Paid"
    CANCELLED = "CANCELLED", "Cancelled"


# Invoices in these states may still be edited, sent, cancelled or paid-and-converted.
OPEN_STATUSES = (InvoiceStatus.DRAFT, InvoiceStatus.SENT)


class YearCounter(models.Model):
    """The last number drawn in a calendar year, for invoices.numbering.draw_next_number."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class InvoiceCounter(YearCounter):
    """The last invoice number drawn in a calendar year.

    Locked with SELECT … FOR UPDATE in the transaction that inserts the invoice, so numbers are
    handed out one at a time and a rolled-back generation gives its number back.
    """


class Invoice(models.Model):
    number = models.CharField(max_length=20, unique=True)
    year = models.PositiveIntegerField()
    sequence = models.PositiveIntegerField()
    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="invoices")
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    currency = models.CharField(max_length=3, choices=Currency.choices)
    subtotal = amount_field()
    discount = amount_field(default=Decimal("0.00"))
    total_amount = amount_field()
    payable_now = amount_field()
    paid_amount = amount_field(default=Decimal("0.00"))
    issue_date = models.DateField()
    due_date = models.DateField()
    notes = models.TextField(blank=True)
    cancel_reason = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # While set and in the future, the invoice's e-mail is on its way (see invoice_send): cancel
    # and edit wait for it. The token says which send holds it.
    sending_until = models.DateTimeField(null=True, blank=True)
    send_token = models.CharField(max_length=32, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="invoice_created_idx"),
            models.Index(fields=["status", "-created_at"], name="invoice_status_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["year", "sequence"], name="invoice_year_sequence_unique"
            ),
            models.CheckConstraint(condition=Q(total_amount__gt=0), name="invoice_total_positive"),
            models.CheckConstraint(
                condition=Q(discount__gte=0), name="invoice_discount_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(total_amount=F("subtotal") - F("discount")),
                name="invoice_total_is_subtotal_minus_discount",
            ),
            models.CheckConstraint(
                condition=Q(payable_now__gt=0, payable_now__lte=F("total_amount")),
                name="invoice_payable_now_within_total",
            ),
            models.CheckConstraint(
                condition=Q(paid_amount__gte=0, paid_amount__lte=F("total_amount")),
                name="invoice_paid_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def remaining_amount(self) -> Decimal:
        return self.total_amount - self.paid_amount

    @property
    def amount_due_now(self) -> Decimal:
        """What the customer is asked to pay next: what is left of "payable now", or, once that
        much has been paid, the whole remaining balance (there is no later due date to wait
        for). Paid so far + due now + later = total, on the page, the PDF and the e-mail."""
        if self.status == InvoiceStatus.CANCELLED:
            return Decimal("0.00")
        first_part_left = self.payable_now - self.paid_amount
        if first_part_left > 0:
            return min(first_part_left, self.remaining_amount)
        return self.remaining_amount

    @property
    def amount_due_later(self) -> Decimal:
        """What remains after the amount due now (the balance of an instalment plan)."""
        if self.status == InvoiceStatus.CANCELLED:
            return Decimal("0.00")
        return self.remaining_amount - self.amount_due_now


class InvoiceItem(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=200)
    amount = amount_field()
    level = models.CharField(max_length=24, choices=Level.choices, blank=True)
    month = models.CharField(max_length=20, blank=True)
    batch = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_item_position"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_item_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.description
