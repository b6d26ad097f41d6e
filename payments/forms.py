from __future__ import annotations

import uuid

from django import forms

from core.forms import StaffForm
from core.listing import SearchField
from core.money import MoneyFormField
from core.timefmt import school_today
from payments.idempotency import KEY_PATTERN
from payments.models import Batch, PaymentMethod, PaymentStatus


class _PaymentForm(StaffForm):
    """Carries the idempotency key made when the form was rendered: a double click or a resent
    POST repeats the same key and so replays instead of paying twice."""

    idempotency_key = forms.RegexField(regex=rf"^{KEY_PATTERN}$", widget=forms.HiddenInput)
    method = forms.ChoiceField(choices=PaymentMethod.choices, initial=PaymentMethod.BANK_TRANSFER)
    transaction_id = forms.CharField(
        max_length=100, required=False, label="Bank or UPI transaction id"
    )
    paid_on = forms.DateField(
        label="Date received",
        required=False,
        help_text="The day the money reached the school: today or earlier (empty: today).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The browser's date picker offers no day after today; the service refuses one anyway.
        self.fields["paid_on"].widget.attrs["max"] = school_today().isoformat()

    @classmethod
    def fresh(cls, **kwargs) -> _PaymentForm:
        return cls(
            initial={
                "idempotency_key": f"form-{uuid.uuid4()}",
                "paid_on": school_today(),
                **kwargs.pop("initial", {}),
            },
            **kwargs,
        )


class PayAndConvertForm(_PaymentForm):
    paid_amount = MoneyFormField(label="Amount received")
    batch = forms.ModelChoiceField(
        queryset=Batch.objects.order_by("code"), required=False, empty_label="No batch yet"
    )
    field_order = [
        "paid_amount",
        "paid_on",
        "method",
        "transaction_id",
        "batch",
        "idempotency_key",
    ]


class PaymentForm(_PaymentForm):
    amount = MoneyFormField(label="Amount received")
    field_order = ["amount", "paid_on", "method", "transaction_id", "idempotency_key"]


class StudentFilterForm(StaffForm):
    q = SearchField(placeholder="Code, name or number")
    payment_status = forms.ChoiceField(
        label="Payment", choices=[("", "Any"), *PaymentStatus.choices], required=False
    )
