import datetime
import json
import uuid

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditLog
from invoices.models import Invoice
from leads.models import Lead
from payments.idempotency import request_hash
from payments.models import Batch, IdempotencyRecord, Payment, Student
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db


def convert(client, invoice_id, body, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        f"/api/invoices/{invoice_id}/pay-and-convert",
        data,
        content_type="application/json",
        **headers,
    )


def key():
    return f"k-{uuid.uuid4()}"


def business_rows():
    return (
        Student.objects.count(),
        Payment.objects.count(),
        Lead.objects.filter(converted=True).count(),
        Invoice.objects.exclude(status__in=["DRAFT", "SENT"]).count(),
        AuditLog.objects.exclude(action__in=["INVOICE_GENERATED", "LEAD_CREATED"]).count(),
    )


NOTHING = (0, 0, 0, 0, 0)


@time_machine.travel(datetime.datetime(2026, 5, 4, 9, 0, tzinfo=datetime.UTC), tick=False)
def test_pay_and_convert_creates_student_and_payment_and_updates_invoice_and_lead(
    marketing_client, marketing
):
    lead = make_lead(name="Arjun Nair", whatsapp="+919847012345", email="arjun@example.com")
    invoice = make_invoice(actor=marketing, lead=lead, amounts=("134.00", "156.00"))
    k = key()

    response = convert(
        marketing_client,
        invoice.pk,
        {"paidAmount": "100.00", "method": "UPI", "transactionId": "UPI-77", "idempotencyKey": k},
    )

    assert response.status_code == 201
    data = response.json()
    student = Student.objects.get()
    payment = Payment.objects.get()
    assert (data["success"], data["studentId"], data["invoiceStatus"]) == (
        True,
        "STU-2026-0001",
        "PARTIALLY_PAID",
    )
    assert data["student"] == {
        "id": student.pk,
        "studentId": "STU-2026-0001",
        "name": "Arjun Nair",
        "email": "arjun@example.com",
        "whatsapp": "+919847012345",
        "level": "A1",
        "batch": None,
        "currency": "EUR",
        "totalAmount": "290.00",
        "totalPaid": "100.00",
        "balance": "190.00",
        "paymentStatus": "PARTIAL",
        "leadId": lead.pk,
        "createdAt": "2026-05-04T14:30:00+05:30",
    }
    assert data["payment"] == {
        "id": payment.pk,
        "amount": "100.00",
        "currency": "EUR",
        "method": "UPI",
        "transactionId": "UPI-77",
        "status": "COMPLETED",
        "invoiceId": invoice.pk,
        "studentId": "STU-2026-0001",
        "paidAt": "2026-05-04T14:30:00+05:30",
        "paidOn": "2026-05-04",
    }
    assert (
        data["invoice"]["paidAmount"],
        data["invoice"]["remainingAmount"],
        data["invoice"]["studentId"],
    ) == ("100.00", "190.00", "STU-2026-0001")
    lead.refresh_from_db()
    assert (lead.converted, lead.status) == (True, "CONVERTED")
    rows = {r.action: r for r in AuditLog.objects.filter(request_id=response["X-Request-ID"])}
    assert sorted(rows) == [
        "LEAD_CONVERTED",
        "LEAD_TO_STUDENT_CONVERSION",
        "PAYMENT_RECEIVED",
        "STUDENT_CREATED",
    ]
    conversion = rows["LEAD_TO_STUDENT_CONVERSION"]
    assert (conversion.entity_type, conversion.entity_id, conversion.severity) == (
        "Invoice",
        str(invoice.pk),
        "INFO",
    )
    assert {
        k: conversion.metadata[k]
        for k in (
            "invoiceNumber",
            "leadId",
            "leadName",
            "studentId",
            "paidAmount",
            "totalAmount",
            "remainingAmount",
            "currency",
            "invoiceStatusBefore",
            "invoiceStatusAfter",
            "idempotencyKey",
        )
    } == {
        "invoiceNumber": invoice.number,
        "leadId": lead.pk,
        "leadName": "Arjun Nair",
        "studentId": "STU-2026-0001",
        "paidAmount": "100.00",
        "totalAmount": "290.00",
        "remainingAmount": "190.00",
        "currency": "EUR",
        "invoiceStatusBefore": "DRAFT",
        "invoiceStatusAfter": "PARTIALLY_PAID",
        "idempotencyKey": k,
    }
    assert (rows["PAYMENT_RECEIVED"].entity_type, rows["STUDENT_CREATED"].entity_type) == (
        "Payment",
        "Student",
    )
    assert IdempotencyRecord.objects.get().state == "COMPLETED"


def test_paying_everything_makes_invoice_and_student_paid(marketing_client, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))

    response = convert(marketing_client, invoice.pk, {"paidAmount": 134, "idempotencyKey": key()})

    assert response.status_code == 201
    assert (response.json()["invoiceStatus"], response.json()["student"]["paymentStatus"]) == (
        "PAID",
        "PAID",
    )
    assert Payment.objects.get().method == "BANK_TRANSFER"


def test_student_codes_are_sequential_and_never_collide(marketing):
    invoices = [make_converted_invoice(actor=marketing) for _ in range(3)]

    codes = [Student.objects.get(lead_id=i.lead_id).student_code for i in invoices]

    year = timezone.localdate().year
    assert codes == [f"STU-{year}-0001", f"STU-{year}-0002", f"STU-{year}-0003"]


def test_a_replay_returns_the_same_answer_and_writes_nothing(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)
    payload = {"paidAmount": "50.00", "idempotencyKey": key()}
    first = convert(marketing_client, invoice.pk, payload)
    rows = business_rows()

    again = convert(marketing_client, invoice.pk, {**payload, "paidAmount": 50})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert business_rows() == rows


def test_the_key_may_come_in_the_idempotency_key_header(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)
    k = key()

    first = convert(marketing_client, invoice.pk, {"paidAmount": "50"}, HTTP_IDEMPOTENCY_KEY=k)
    again = convert(marketing_client, invoice.pk, {"paidAmount": "50", "idempotencyKey": k})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Payment.objects.get().idempotency_key == k


def test_the_same_key_with_another_payload_or_invoice_is_a_422(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)
    other = make_invoice(actor=marketing)
    k = key()
    convert(marketing_client, invoice.pk, {"paidAmount": "50.00", "idempotencyKey": k})
    rows = business_rows()

    changed = convert(marketing_client, invoice.pk, {"paidAmount": "60.00", "idempotencyKey": k})
    elsewhere = convert(marketing_client, other.pk, {"paidAmount": "50.00", "idempotencyKey": k})
    later = marketing_client.post(
        f"/api/invoices/{invoice.pk}/payments",
        json.dumps({"amount": "50.00", "idempotencyKey": k}),
        content_type="application/json",
    )

    for response in (changed, elsewhere, later):
        assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    assert business_rows() == rows


def test_a_request_still_in_flight_is_a_409_and_a_stale_claim_is_taken_over(
    marketing_client, marketing
):
    invoice = make_invoice(actor=marketing)
    k = key()
    payload = {"paidAmount": "50.00", "idempotencyKey": k}
    # What a first request leaves while it runs: its committed claim.
    IdempotencyRecord.objects.create(
        key=k,
        operation="pay_and_convert",
        invoice_id=invoice.pk,
        request_hash=request_hash(
            "pay_and_convert",
            invoice.pk,
            {
                "paidAmount": "50.00",
                "method": "BANK_TRANSFER",
                "transactionId": "",
                "batchId": None,
            },
        ),
        state="IN_FLIGHT",
        claim_token="first",
    )

    busy = convert(marketing_client, invoice.pk, payload)
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=5)):
        after_crash = convert(marketing_client, invoice.pk, payload)

    assert (busy.status_code, busy.json()["code"]) == (409, "request_in_flight")
    assert after_crash.status_code == 201
    assert Payment.objects.count() == 1


def test_a_second_conversion_under_a_new_key_is_a_409_with_a_warning_row(
    marketing_client, marketing
):
    invoice = make_invoice(actor=marketing)
    second_invoice_same_lead = make_invoice(actor=marketing, lead=invoice.lead)
    convert(marketing_client, invoice.pk, {"paidAmount": "50.00", "idempotencyKey": key()})

    again = convert(marketing_client, invoice.pk, {"paidAmount": "50.00", "idempotencyKey": key()})
    other = convert(
        marketing_client,
        second_invoice_same_lead.pk,
        {"paidAmount": "50.00", "idempotencyKey": key()},
    )

    for response in (again, other):
        assert (response.status_code, response.json()["code"]) == (409, "already_converted")
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)
    warnings = AuditLog.objects.filter(severity="WARNING").order_by("id")
    assert [(w.action, w.entity_id) for w in warnings] == [
        ("LEAD_TO_STUDENT_CONVERSION", str(invoice.pk)),
        ("LEAD_TO_STUDENT_CONVERSION", str(second_invoice_same_lead.pk)),
    ]
    assert warnings[0].metadata["outcome"] == "already_converted"
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()
    # A refused attempt leaves no claim behind.
    assert IdempotencyRecord.objects.count() == 1


def test_a_cancelled_invoice_cannot_be_paid(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)
    Invoice.objects.filter(pk=invoice.pk).update(status="CANCELLED")

    response = convert(marketing_client, invoice.pk, {"paidAmount": "5", "idempotencyKey": key()})

    assert (response.status_code, response.json()["code"]) == (409, "invoice_not_payable")
    assert business_rows() == (0, 0, 0, 1, 0)  # the one cancelled invoice, nothing else


@pytest.mark.parametrize(
    "payload",
    [
        {"paidAmount": "-5.00"},
        {"paidAmount": "0"},
        {"paidAmount": 0},
        {"paidAmount": "NaN"},
        {"paidAmount": "Infinity"},
        {"paidAmount": "1e3"},
        '{"paidAmount": 1e3, "idempotencyKey": "abcdefgh-1"}',
        '{"paidAmount": 10.005, "idempotencyKey": "abcdefgh-1"}',
        '{"paidAmount": NaN, "idempotencyKey": "abcdefgh-1"}',
        {"paidAmount": "10.005"},
        {"paidAmount": "1000000.01"},
        {"paidAmount": ""},
        {"paidAmount": None},
        {"paidAmount": [10]},
        {},
        {"paidAmount": "10", "method": "BITCOIN"},
        {"paidAmount": "10", "batchId": "evening"},
        {"paidAmount": "10", "batchId": 999999},
        {"paidAmount": "10", "idempotencyKey": ""},
        {"paidAmount": "10", "idempotencyKey": "short"},
        {"paidAmount": "10", "idempotencyKey": "has spaces in it"},
        {"paidAmount": "134.01"},
        '{"paidAmount": "10", ',
        "[]",
    ],
)
def test_each_bad_input_is_a_400_and_leaves_no_row_and_no_attempt(
    marketing_client, marketing, payload
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    if isinstance(payload, dict):
        payload = {"idempotencyKey": "abcdefgh-1", **payload}

    response = convert(marketing_client, invoice.pk, payload)

    assert response.status_code == 400, response.json()
    assert response.json()["code"] in (
        "validation_error",
        "malformed_json",
        "amount_exceeds_remaining",
    )
    assert business_rows() == NOTHING
    assert IdempotencyRecord.objects.count() == 0


def test_a_failed_attempt_does_not_block_a_retry_with_the_same_key(marketing_client, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))

    too_much = convert(
        marketing_client, invoice.pk, {"paidAmount": "200", "idempotencyKey": "k-1234567"}
    )
    fixed = convert(
        marketing_client, invoice.pk, {"paidAmount": "134", "idempotencyKey": "k-1234567"}
    )

    assert (too_much.status_code, too_much.json()["code"]) == (400, "amount_exceeds_remaining")
    assert too_much.json()["details"] == {
        "paidAmount": ["Only 134.00 remains to be paid on this invoice."]
    }
    assert fixed.status_code == 201


def test_unknown_invoice_is_a_404_and_leaves_no_attempt(marketing_client):
    response = convert(marketing_client, 999999, {"paidAmount": "10", "idempotencyKey": key()})

    assert response.status_code == 404
    assert IdempotencyRecord.objects.count() == 0


def test_batch_enrolment_respects_the_seat_limit(marketing_client, marketing):
    batch = Batch.objects.create(code="A1-JAN-EVE-01", level="A1", timing="EVENING", seats=1)
    first = make_invoice(actor=marketing)
    second = make_invoice(actor=marketing)

    ok = convert(
        marketing_client,
        first.pk,
        {"paidAmount": "10", "batchId": batch.pk, "idempotencyKey": key()},
    )
    full = convert(
        marketing_client,
        second.pk,
        {"paidAmount": "10", "batchId": batch.pk, "idempotencyKey": key()},
    )

    assert (ok.status_code, ok.json()["student"]["batch"]) == (201, "A1-JAN-EVE-01")
    assert (full.status_code, full.json()["code"]) == (409, "batch_full")
    assert Student.objects.count() == 1


def test_a_whatsapp_number_already_used_by_a_student_is_a_409(marketing_client, marketing):
    make_converted_invoice(actor=marketing, lead=make_lead(whatsapp="+919847000001"))
    invoice = make_invoice(actor=marketing, lead=make_lead(whatsapp="+919847000001"))

    response = convert(marketing_client, invoice.pk, {"paidAmount": "10", "idempotencyKey": key()})

    assert (response.status_code, response.json()["code"]) == (409, "whatsapp_in_use")
    assert Student.objects.count() == 1


EXPECTED = {"anonymous": 401, "teacher": 403, "marketing": 201, "founder": 201}


@pytest.mark.parametrize("persona_client", list(EXPECTED), indirect=True)
def test_pay_and_convert_role_matrix(persona_client, request, marketing):
    persona = request.node.callspec.params["persona_client"]
    invoice = make_invoice(actor=marketing)

    response = convert(persona_client, invoice.pk, {"paidAmount": "10", "idempotencyKey": key()})

    assert response.status_code == EXPECTED[persona]
    assert Student.objects.count() == (1 if EXPECTED[persona] == 201 else 0)
    assert IdempotencyRecord.objects.count() == (1 if EXPECTED[persona] == 201 else 0)
