from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.money import Currency, amount_field
from invoices.models import Invoice, YearCounter
from leads.models import Lead, Level


class PaymentMethod(models.TextChoices):
    BANK_TRANSFER = "BANK_TRANSFER", "Bank transfer"
    UPI = "UPI", "UPI"
    CASH = "CASH", "Cash"
    CARD = "CARD", "Card"
    OTHER = "OTHER", "Other"


class PaymentStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    PARTIAL = "PARTIAL", "Partial"
    PAID = "PAID", "Paid"
    OVERDUE = "OVERDUE", "Overdue"


class BatchTiming(models.TextChoices):
    MORNING = "MORNING", "Morning (CET)"
    EVENING = "EVENING", "Evening (CET)"


class Batch(models.Model):
    code = models.CharField(max_length=40, unique=True)
    level = models.CharField(max_length=24, choices=Level.choices)
    timing = models.CharField(max_length=8, choices=BatchTiming.choices)
    seats = models.PositiveSmallIntegerField(default=10)
    start_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(seats__gte=1, seats__lte=15), name="batch_seats_1_15"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class StudentCounter(YearCounter):
    """The last student code number drawn in a year; locked like the invoice counter."""


class Student(models.Model):
    student_code = models.CharField(max_length=20, unique=True)
    lead = models.OneToOneField(Lead, on_delete=models.PROTECT, related_name="student")
    name = models.CharField(max_length=150)
    email = models.EmailField(blank=True)
    whatsapp = models.CharField(max_length=20, unique=True)
    level = models.CharField(max_length=24, choices=Level.choices, blank=True)
    batch = models.ForeignKey(
        Batch, on_delete=models.PROTECT, null=True, blank=True, related_name="students"
    )
    currency = models.CharField(max_length=3, choices=Currency.choices)
    total_amount = amount_field()
    total_paid = amount_field(default=Decimal("0.00"))
    payment_status = models.CharField(
        max_length=8, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="student_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_paid__gte=0, total_paid__lte=F("total_amount")),
                name="student_paid_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_code} {self.name}"

    @property
    def balance(self) -> Decimal:
        return self.total_amount - self.total_paid


class Payment(models.Model):
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = amount_field()
    currency = models.CharField(max_length=3, choices=Currency.choices)
    method = models.CharField(
        max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.BANK_TRANSFER
    )
    transaction_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=12, default="COMPLETED")
    # When the payment was recorded here; paid_on is the day the money was received, which the
    # staff may enter later (a bank transfer seen the next morning).
    paid_at = models.DateTimeField(default=timezone.now)
    paid_on = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The home page's "Payments today" reads the payments of one received day on every load.
        indexes = [models.Index(fields=["paid_on"], name="payment_paid_on_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class IdempotencyState(models.TextChoices):
    IN_FLIGHT = "IN_FLIGHT", "In flight"
    COMPLETED = "COMPLETED", "Completed"


class IdempotencyRecord(models.Model):
    """One money request identified by its client's key, bound to the invoice and the payload.

    See payments.idempotency for how it is claimed, completed and released.
    """

    key = models.CharField(max_length=128, unique=True)
    operation = models.CharField(max_length=32)
    invoice_id = models.BigIntegerField()
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=IdempotencyState.choices)
    claim_token = models.CharField(max_length=32)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    claimed_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.operation} {self.key} {self.state}"
