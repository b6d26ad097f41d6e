"""What only a real PostgreSQL can show: row locks under concurrency, and a failure injected by
the database itself half-way through a conversion."""

import json
from collections import Counter

import pytest
from django.test import Client

from audit.models import AuditLog
from invoices.models import Invoice
from leads.models import Lead
from payments.models import Batch, IdempotencyRecord, Payment, Student
from tests.concurrency import run_concurrently
from tests.factories import make_lead, make_token
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

SUCCESS_ACTIONS = [
    "LEAD_CONVERTED",
    "LEAD_TO_STUDENT_CONVERSION",
    "PAYMENT_RECEIVED",
    "STUDENT_CREATED",
]


def test_twenty_concurrent_requests_same_and_different_keys_give_exactly_one_conversion(marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    token = make_token(marketing)
    keys = ["shared-key-0001"] * 10 + [f"own-key-{i:04d}" for i in range(10)]

    def pay(k):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(
            f"/api/invoices/{invoice.pk}/pay-and-convert",
            json.dumps({"paidAmount": "100.00", "idempotencyKey": k}),
            content_type="application/json",
        )

    responses = run_concurrently([lambda k=k: pay(k) for k in keys])

    assert all(not isinstance(r, Exception) for r in responses), responses
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert len({json.dumps(r.json(), sort_keys=True) for r in created}) == 1  # replays only
    winner_body = created[0].json()
    codes = Counter(r.json()["code"] for r in responses if r.status_code == 409)
    assert set(codes) <= {"already_converted", "request_in_flight"}
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)
    assert winner_body["studentId"] == Student.objects.get().student_code
    success = AuditLog.objects.filter(severity="INFO").exclude(action="INVOICE_GENERATED")
    assert sorted(success.values_list("action", flat=True)) == SUCCESS_ACTIONS
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()
    invoice.refresh_from_db()
    assert (invoice.paid_amount, invoice.status) == (100, "PARTIALLY_PAID")
    # Only the winner's claim is kept; every refused attempt released its own.
    assert list(IdempotencyRecord.objects.values_list("state", flat=True)) == ["COMPLETED"]


def test_a_failure_after_the_student_insert_leaves_no_business_rows_and_one_critical_row(
    marketing_client, marketing, payment_insert_fails
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    rows_before = AuditLog.objects.count()

    response = marketing_client.post(
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        json.dumps({"paidAmount": "100.00", "idempotencyKey": "key-failing-1"}),
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-failing-1",
    )

    assert response.status_code == 500
    assert response.json() == {
        "error": response.json()["error"],
        "code": "internal_error",
        "requestId": "req-failing-1",
    }
    assert (Student.objects.count(), Payment.objects.count()) == (0, 0)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_amount) == ("DRAFT", 0)
    assert Lead.objects.get().converted is False
    assert IdempotencyRecord.objects.count() == 0
    [row] = AuditLog.objects.all()[: AuditLog.objects.count() - rows_before]
    assert AuditLog.objects.count() == rows_before + 1
    assert (row.action, row.severity, row.entity_type, row.entity_id, row.request_id) == (
        "LEAD_TO_STUDENT_CONVERSION",
        "CRITICAL",
        "Invoice",
        str(invoice.pk),
        "req-failing-1",
    )
    assert "injected: payments are refused" in row.error_message
    assert "payments/services.py" in row.error_stack
    assert {
        k: row.metadata[k]
        for k in ("invoiceNumber", "leadId", "paidAmount", "currency", "idempotencyKey", "outcome")
    } == {
        "invoiceNumber": invoice.number,
        "leadId": invoice.lead_id,
        "paidAmount": "100.00",
        "currency": "EUR",
        "idempotencyKey": "key-failing-1",
        "outcome": "rolled_back",
    }


def test_after_an_injected_failure_a_retry_with_the_same_key_succeeds(
    marketing_client, marketing, owner_connection
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    body = json.dumps({"paidAmount": "100.00", "idempotencyKey": "key-retry-0001"})
    url = f"/api/invoices/{invoice.pk}/pay-and-convert"
    with owner_connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE payments_payment ADD CONSTRAINT test_refuse CHECK (amount > 1000000)"
        )
    try:
        failed = marketing_client.post(url, body, content_type="application/json")
    finally:
        with owner_connection.cursor() as cursor:
            cursor.execute("ALTER TABLE payments_payment DROP CONSTRAINT test_refuse")

    retried = marketing_client.post(url, body, content_type="application/json")

    assert (failed.status_code, retried.status_code) == (500, 201)
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)
    assert Invoice.objects.get().status == "PARTIALLY_PAID"
    # The failed attempt's student code went back with the rollback: no gap.
    assert Student.objects.get().student_code.endswith("-0001")


def _client(token):
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def test_concurrent_conversions_of_different_invoices_get_gapless_unique_student_codes(marketing):
    invoices = [make_invoice(actor=marketing) for _ in range(10)]
    token = make_token(marketing)

    def pay(invoice_id):
        return _client(token).post(
            f"/api/invoices/{invoice_id}/pay-and-convert",
            json.dumps({"paidAmount": "50.00", "idempotencyKey": f"key-{invoice_id:08d}"}),
            content_type="application/json",
        )

    responses = run_concurrently([lambda pk=i.pk: pay(pk) for i in invoices])

    assert [r.status_code for r in responses] == [201] * 10
    codes = sorted(Student.objects.values_list("student_code", flat=True))
    assert [int(code[-4:]) for code in codes] == list(range(1, 11))


def test_concurrent_later_payments_never_overpay_the_invoice(marketing):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    token = make_token(marketing)

    def pay(i):
        return _client(token).post(
            f"/api/invoices/{invoice.pk}/payments",
            json.dumps({"amount": "60.00", "idempotencyKey": f"later-{i:04d}"}),
            content_type="application/json",
        )

    responses = run_concurrently([lambda i=i: pay(i) for i in range(6)])

    assert sorted(r.status_code for r in responses) == [201, 400, 400, 400, 400, 400]
    invoice.refresh_from_db()
    student = Student.objects.get()
    assert (invoice.paid_amount, invoice.status) == (94, "PARTIALLY_PAID")
    assert (student.total_paid, student.balance) == (94, 40)
    assert Payment.objects.count() == 2


def test_two_leads_with_one_whatsapp_converting_at_once_give_one_student_and_a_409(marketing):
    first = make_invoice(actor=marketing, lead=make_lead(whatsapp="+919847000777"))
    second = make_invoice(actor=marketing, lead=make_lead(whatsapp="+919847000777"))
    token = make_token(marketing)

    def pay(invoice_id):
        return _client(token).post(
            f"/api/invoices/{invoice_id}/pay-and-convert",
            json.dumps({"paidAmount": "50.00", "idempotencyKey": f"wa-{invoice_id:08d}"}),
            content_type="application/json",
        )

    responses = run_concurrently([lambda: pay(first.pk), lambda: pay(second.pk)])

    assert sorted(r.status_code for r in responses) == [201, 409]
    assert [r.json()["code"] for r in responses if r.status_code == 409] == ["whatsapp_in_use"]
    assert Student.objects.count() == 1
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()


def test_a_later_payment_failing_in_the_database_leaves_one_critical_row_and_can_be_retried(
    marketing_client, marketing, owner_connection
):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    rows_before = AuditLog.objects.count()
    body = json.dumps({"amount": "100.00", "idempotencyKey": "later-fail-01"})
    url = f"/api/invoices/{invoice.pk}/payments"
    with owner_connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE payments_payment ADD CONSTRAINT test_refuse CHECK (amount < 0) NOT VALID"
        )
    try:
        failed = marketing_client.post(url, body, content_type="application/json")
    finally:
        with owner_connection.cursor() as cursor:
            cursor.execute("ALTER TABLE payments_payment DROP CONSTRAINT test_refuse")

    assert failed.status_code == 500
    assert AuditLog.objects.count() == rows_before + 1
    row = AuditLog.objects.order_by("-id").first()
    assert (row.action, row.severity, row.entity_id, row.metadata["amount"]) == (
        "PAYMENT_RECEIVED",
        "CRITICAL",
        str(invoice.pk),
        "100.00",
    )
    invoice.refresh_from_db()
    assert (invoice.paid_amount, Payment.objects.count()) == (34, 1)

    retried = marketing_client.post(url, body, content_type="application/json")

    assert (retried.status_code, retried.json()["invoiceStatus"]) == (201, "PAID")


def test_concurrent_conversions_into_a_batch_never_exceed_its_seats(marketing):
    batch = Batch.objects.create(code="A1-MAR-MOR-01", level="A1", timing="MORNING", seats=2)
    invoices = [make_invoice(actor=marketing) for _ in range(5)]
    token = make_token(marketing)

    def pay(invoice_id):
        return _client(token).post(
            f"/api/invoices/{invoice_id}/pay-and-convert",
            json.dumps(
                {
                    "paidAmount": "50.00",
                    "batchId": batch.pk,
                    "idempotencyKey": f"b-{invoice_id:08d}",
                }
            ),
            content_type="application/json",
        )

    responses = run_concurrently([lambda pk=i.pk: pay(pk) for i in invoices])

    assert sorted(r.status_code for r in responses) == [201, 201, 409, 409, 409]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"batch_full"}
    assert batch.students.count() == 2
