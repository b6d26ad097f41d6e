"""The day the money was received: in the past or today, never in the future; stored, answered
by the API, shown on the invoice and student pages; refused with 400 (API) or a form error."""

import datetime
import json
import re
import uuid

import pytest
import time_machine
from django.test import Client

from audit.models import AuditLog
from invoices.models import Invoice
from payments.models import IdempotencyRecord, Payment, Student
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db

# 23:30 UTC on 1 Dec is 05:00 on 2 Dec in India: the school's today is the 2nd.
NOW = datetime.datetime(2026, 12, 1, 23, 30, tzinfo=datetime.UTC)


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def key():
    return f"k-{uuid.uuid4()}"


def state():
    return (
        Payment.objects.count(),
        Student.objects.count(),
        AuditLog.objects.count(),
        IdempotencyRecord.objects.count(),
        list(Invoice.objects.values_list("status", "paid_amount").order_by("pk")),
    )


@time_machine.travel(NOW, tick=False)
def test_a_conversion_takes_a_day_in_the_past_and_answers_it(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "50", "paidOn": "2026-11-28", "idempotencyKey": key()},
    )

    assert response.status_code == 201
    assert response.json()["payment"]["paidOn"] == "2026-11-28"
    assert Payment.objects.get().paid_on == datetime.date(2026, 11, 28)
    row = AuditLog.objects.get(action="PAYMENT_RECEIVED")
    assert row.metadata["paidOn"] == "2026-11-28"


@time_machine.travel(NOW, tick=False)
def test_without_a_date_the_payment_is_dated_the_school_s_today(marketing_client, marketing):
    invoice = make_converted_invoice(actor=marketing, paid="10.00")

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/payments",
        {"amount": "20", "idempotencyKey": key()},
    )

    assert response.status_code == 201
    assert response.json()["payment"]["paidOn"] == "2026-12-02"


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("endpoint", ["pay-and-convert", "payments"])
def test_a_day_in_the_future_is_a_400_that_writes_nothing(marketing_client, marketing, endpoint):
    invoice = (
        make_invoice(actor=marketing)
        if endpoint == "pay-and-convert"
        else make_converted_invoice(actor=marketing, paid="10.00")
    )
    amount_field = "paidAmount" if endpoint == "pay-and-convert" else "amount"
    before = state()

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/{endpoint}",
        {amount_field: "20", "paidOn": "2026-12-03", "idempotencyKey": key()},
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "Some fields are not valid.",
        "code": "validation_error",
        "details": {"paidOn": ["The payment date cannot be in the future."]},
    }
    assert state() == before


@pytest.mark.parametrize("value", ["02/12/2026", "2026-13-01", 20261201, ""])
def test_a_malformed_date_is_a_400_naming_the_field(marketing_client, marketing, value):
    invoice = make_invoice(actor=marketing)
    before = state()

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "20", "paidOn": value, "idempotencyKey": key()},
    )

    assert (response.status_code, list(response.json()["details"])) == (400, ["paidOn"])
    assert state() == before


def test_a_replay_with_another_date_is_another_payload(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)
    body = {"paidAmount": "20", "paidOn": "2026-01-02", "idempotencyKey": key()}
    path = f"/api/invoices/{invoice.pk}/pay-and-convert"

    first = post(marketing_client, path, body)
    again = post(marketing_client, path, {**body, "paidOn": "2026-01-03"})

    assert (first.status_code, again.status_code) == (201, 422)
    assert Payment.objects.get().paid_on == datetime.date(2026, 1, 2)


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


def _form_key(html):
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


@time_machine.travel(NOW, tick=False)
def test_the_form_offers_today_and_refuses_a_future_day_beside_the_field(staff, marketing):
    invoice = make_invoice(actor=marketing)
    url = f"/payments/invoice/{invoice.pk}/convert/"
    page = staff.get(url).content.decode()
    assert 'name="paid_on" value="2026-12-02"' in page
    assert 'max="2026-12-02"' in page
    before = state()

    response = staff.post(
        url,
        {
            "paid_amount": "20",
            "paid_on": "2026-12-03",
            "method": "UPI",
            "idempotency_key": _form_key(page),
        },
    )

    assert response.status_code == 400
    assert (
        'id="id_paid_on_error">The payment date cannot be in the future.'
        in response.content.decode()
    )
    assert state() == before


@time_machine.travel(NOW, tick=False)
def test_the_day_received_is_shown_on_the_invoice_and_the_student_page(staff, marketing):
    invoice = make_invoice(actor=marketing)
    url = f"/payments/invoice/{invoice.pk}/convert/"
    key_ = _form_key(staff.get(url).content.decode())
    staff.post(
        url,
        {"paid_amount": "20", "paid_on": "2026-11-28", "method": "UPI", "idempotency_key": key_},
    )

    invoice_page = staff.get(f"/invoices/{invoice.pk}/").content.decode()
    student_page = staff.get(f"/leads/{invoice.lead_id}/").content.decode()

    assert '<td data-label="Received">28 Nov 2026</td>' in invoice_page
    assert '<td data-label="Received">28 Nov 2026</td>' in student_page
    assert "2 Dec 2026, 05:00 IST" in invoice_page  # when it was recorded
