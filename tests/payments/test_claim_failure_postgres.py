"""A money request whose idempotency claim fails in the database: one CRITICAL row that carries
the whole request (CONTRACT §5: never a bare error without entity, amount or key)."""

import json

import pytest

from audit.models import AuditLog
from core.timefmt import school_today
from invoices.models import Invoice
from payments.models import IdempotencyRecord, Payment, Student
from tests import database
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]


def claims_refused():
    """Every claim INSERT fails with a real database error (not a unique violation)."""
    return database.inserts_refused("payments_idempotencyrecord", "injected: the claim fails")


def _state():
    return (
        Student.objects.count(),
        Payment.objects.count(),
        IdempotencyRecord.objects.count(),
        list(Invoice.objects.values_list("status", "paid_amount")),
    )


CASES = {
    "pay-and-convert": ("paidAmount", "LEAD_TO_STUDENT_CONVERSION", "Conversion of invoice"),
    "payments": ("amount", "PAYMENT_RECEIVED", "Payment on invoice"),
}


@pytest.mark.parametrize("endpoint", list(CASES))
def test_a_claim_failing_in_the_database_leaves_one_critical_row_with_the_request_context(
    marketing_client, marketing, endpoint
):
    amount_field, action, subject = CASES[endpoint]
    if endpoint == "payments":
        invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    else:
        invoice = make_invoice(actor=marketing, amounts=("134.00",))
    before, rows_before = _state(), AuditLog.objects.count()
    body = {amount_field: "60.00", "method": "UPI", "transactionId": "UPI-991"}

    with claims_refused():
        response = marketing_client.post(
            f"/api/invoices/{invoice.pk}/{endpoint}",
            json.dumps({**body, "idempotencyKey": "claim-fails-01"}),
            content_type="application/json",
            HTTP_X_REQUEST_ID="req-claim-fails",
        )

    assert response.status_code == 500
    assert (response.json()["code"], response.json()["requestId"]) == (
        "internal_error",
        "req-claim-fails",
    )
    assert _state() == before  # nothing written
    [row] = AuditLog.objects.order_by("id")[rows_before:]
    assert (row.action, row.severity, row.entity_type, row.entity_id, row.request_id) == (
        action,
        "CRITICAL",
        "Invoice",
        str(invoice.pk),
        "req-claim-fails",
    )
    assert row.description == (
        f"{subject} {invoice.number} failed before anything was recorded: ProgrammingError"
    )
    assert "injected: the claim fails" in row.error_message
    assert row.metadata == {
        "invoiceId": invoice.pk,
        "invoiceNumber": invoice.number,
        "leadId": invoice.lead_id,
        amount_field: "60.00",
        "currency": "EUR",
        "method": "UPI",
        "transactionId": "UPI-991",
        **({"batchId": None} if endpoint == "pay-and-convert" else {}),
        "paidOn": school_today().isoformat(),
        "idempotencyKey": "claim-fails-01",
        "outcome": "not_started",
    }
    assert (row.user_id, row.user_email) == (marketing.pk, marketing.email)
