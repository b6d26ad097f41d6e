import json
import uuid

import pytest

from audit.models import AuditLog
from payments.models import IdempotencyRecord, Payment, Student
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db


def pay(client, invoice_id, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        f"/api/invoices/{invoice_id}/payments", data, content_type="application/json"
    )


def key():
    return f"k-{uuid.uuid4()}"


def test_later_payments_update_invoice_and_student_until_paid(marketing_client, marketing):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")

    first = pay(
        marketing_client, invoice.pk, {"amount": "60.00", "method": "UPI", "idempotencyKey": key()}
    )
    second = pay(marketing_client, invoice.pk, {"amount": "40", "idempotencyKey": key()})

    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["invoiceStatus"], first.json()["invoice"]["remainingAmount"]) == (
        "PARTIALLY_PAID",
        "40.00",
    )
    assert first.json()["student"]["balance"] == "40.00"
    assert second.json()["invoiceStatus"] == "PAID"
    student = Student.objects.get()
    assert (student.total_paid, student.balance, student.payment_status) == (134, 0, "PAID")
    assert list(Payment.objects.order_by("id").values_list("amount", flat=True)) == [34, 60, 40]
    rows = AuditLog.objects.filter(action="PAYMENT_RECEIVED").order_by("id")
    assert [r.metadata["amount"] for r in rows] == ["34.00", "60.00", "40.00"]
    assert rows.last().metadata["invoiceStatusAfter"] == "PAID"
    assert rows.last().metadata["studentBalance"] == "0.00"


def test_overpayment_is_refused_and_writes_nothing(marketing_client, marketing):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="100.00")
    rows = AuditLog.objects.count()

    response = pay(marketing_client, invoice.pk, {"amount": "34.01", "idempotencyKey": key()})

    assert (response.status_code, response.json()["code"]) == (400, "amount_exceeds_remaining")
    assert response.json()["details"] == {
        "amount": ["Only 34.00 remains to be paid on this invoice."]
    }
    assert Payment.objects.count() == 1
    assert AuditLog.objects.count() == rows
    assert IdempotencyRecord.objects.count() == 1  # the conversion's


def test_a_later_payment_needs_a_converted_invoice(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)

    response = pay(marketing_client, invoice.pk, {"amount": "10", "idempotencyKey": key()})

    assert (response.status_code, response.json()["code"]) == (409, "not_converted")
    assert Payment.objects.count() == 0


def test_a_later_payment_replays_with_the_same_key(marketing_client, marketing):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    body = {"amount": "10.00", "idempotencyKey": key()}

    first = pay(marketing_client, invoice.pk, body)
    again = pay(marketing_client, invoice.pk, body)
    other = pay(marketing_client, invoice.pk, {**body, "amount": "11.00"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.json() == first.json()
    assert Payment.objects.count() == 2


@pytest.mark.parametrize("amount", ["-1", "0", "NaN", "1e3", "1.234", "abc", None])
def test_bad_later_payment_amounts_are_a_400_without_an_attempt(
    marketing_client, marketing, amount
):
    invoice = make_converted_invoice(actor=marketing)
    records = IdempotencyRecord.objects.count()

    response = pay(marketing_client, invoice.pk, {"amount": amount, "idempotencyKey": key()})

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["amount"]
    assert IdempotencyRecord.objects.count() == records
    assert Payment.objects.count() == 1


def test_students_list_and_detail(marketing_client, marketing, django_assert_num_queries):
    first = make_converted_invoice(actor=marketing)
    second = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="134.00")
    marketing_client.get("/api/students")

    with django_assert_num_queries(2):
        listed = marketing_client.get("/api/students").json()
    student = Student.objects.get(lead_id=first.lead_id)
    detail = marketing_client.get(f"/api/students/{student.pk}").json()

    assert [s["leadId"] for s in listed["results"]] == [second.lead_id, first.lead_id]
    assert listed["next"] is None
    assert (
        detail["studentId"],
        detail["totalPaid"],
        detail["balance"],
        detail["paymentStatus"],
    ) == (
        student.student_code,
        "50.00",
        "84.00",
        "PARTIAL",
    )
    paid = marketing_client.get("/api/students?paymentStatus=PAID").json()["results"]
    assert [s["leadId"] for s in paid] == [second.lead_id]
    assert marketing_client.get("/api/students/999999").status_code == 404


EXPECTED = {"anonymous": 401, "teacher": 403, "marketing": None, "founder": None}


@pytest.mark.parametrize("persona_client", list(EXPECTED), indirect=True)
@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("post", "/api/invoices/{invoice}/payments", 201),
        ("get", "/api/students", 200),
        ("get", "/api/students/{student}", 200),
    ],
)
def test_payments_and_students_role_matrix(persona_client, request, marketing, method, path, ok):
    persona = request.node.callspec.params["persona_client"]
    invoice = make_converted_invoice(actor=marketing)
    student = Student.objects.get()
    url = path.format(invoice=invoice.pk, student=student.pk)
    if method == "get":
        response = persona_client.get(url)
    else:
        response = pay(persona_client, invoice.pk, {"amount": "1", "idempotencyKey": key()})

    assert response.status_code == (EXPECTED[persona] or ok)
    if EXPECTED[persona]:
        assert Payment.objects.count() == 1


def test_an_amount_in_other_scripts_digits_is_refused(marketing_client, marketing):
    from tests.money_factories import make_invoice

    invoice = make_invoice(actor=marketing)

    response = marketing_client.post(
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        json.dumps({"paidAmount": "\u0661\u0660", "idempotencyKey": "key-digits-01"}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "paidAmount" in response.json()["details"]
    assert Payment.objects.count() == 0
