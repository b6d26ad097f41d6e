"""Builders for invoices and conversions, going through the services as staff would."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from invoices.models import Invoice
from invoices.services import invoice_generate
from leads.models import Lead
from payments.services import pay_and_convert
from tests.factories import make_lead


def make_invoice(
    *,
    actor: Any,
    lead: Lead | None = None,
    amounts: tuple[str, ...] = ("134.00",),
    discount: str = "0.00",
    payable_now: str | None = None,
    currency: str = "EUR",
) -> Invoice:
    return invoice_generate(
        lead=lead or make_lead(),
        currency=currency,
        items=[
            {"description": "German Language Course", "amount": Decimal(a), "level": "A1"}
            for a in amounts
        ],
        discount=Decimal(discount),
        payable_now=Decimal(payable_now) if payable_now else None,
        actor=actor,
    )


def make_converted_invoice(*, actor: Any, paid: str = "50.00", **kwargs: Any) -> Invoice:
    invoice = make_invoice(actor=actor, **kwargs)
    pay_and_convert(
        invoice=invoice,
        amount=Decimal(paid),
        idempotency_key=f"test-{uuid.uuid4()}",
        actor=actor,
    )
    invoice.refresh_from_db()
    return invoice
