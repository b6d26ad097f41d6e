"""The audit-log feed names its entities (`entityLabel`: an invoice's number, a lead's name, a
student's code), one query per entity type on the page; an invoice's history includes the rows
of its payments."""

from __future__ import annotations

import csv
import datetime
import io
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from audit.models import Action, AuditLog
from audit.services import AuditEntry, audit_record
from payments.models import Payment, Student
from payments.services import payment_record
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db

URL = "/api/system/audit-logs"
EXPORT = "/api/system/audit-logs/export"


def _labels(response) -> dict[tuple[str, str], str | None]:
    assert response.status_code == 200, response.content
    return {(e["entityType"], e["entityId"]): e["entityLabel"] for e in response.json()["logs"]}


def _pay_later(invoice, founder, amount="10.00"):
    payment_record(
        invoice=invoice,
        amount=Decimal(amount),
        idempotency_key=f"later-{uuid.uuid4()}",
        actor=founder,
    )
    return Payment.objects.filter(invoice=invoice).latest("pk")


def test_entries_name_their_invoice_lead_student_payment_and_user(founder_client, founder):
    invoice = make_converted_invoice(actor=founder, lead=make_lead(name="Asha Menon"))
    student = Student.objects.get(lead=invoice.lead)
    payment = Payment.objects.get(invoice=invoice)
    audit_record(AuditEntry(Action.USER_UPDATED, description="x", entity=founder, actor=founder))

    labels = _labels(founder_client.get(URL))

    assert labels[("Invoice", str(invoice.pk))] == invoice.number
    assert labels[("Lead", str(invoice.lead_id))] == "Asha Menon"
    assert labels[("Student", str(student.pk))] == f"{student.student_code} (Asha Menon)"
    assert labels[("Payment", str(payment.pk))] == f"€50.00 on {invoice.number}"
    assert labels[("User", str(founder.pk))] == "Fiona Founder"


def test_an_entity_that_is_gone_or_has_no_name_gets_none(founder_client, founder):
    for entity_type, entity_id in (("Lead", "999999"), ("AuditLog", "3f2a9c"), ("Lead", "x7")):
        audit_record(
            AuditEntry(
                Action.LEAD_DELETED,
                description="x",
                entity_type=entity_type,
                entity_id=entity_id,
            )
        )

    labels = _labels(founder_client.get(URL))

    assert labels == {("Lead", "999999"): None, ("AuditLog", "3f2a9c"): None, ("Lead", "x7"): None}


def test_names_cost_one_query_per_entity_type_whatever_the_number_of_rows(
    founder_client, founder, django_assert_num_queries
):
    def rows(n):
        for _ in range(n):
            lead = make_lead()
            audit_record(AuditEntry(Action.LEAD_UPDATED, description="x", entity=lead))
            invoice = make_invoice(actor=founder, lead=lead)
            audit_record(AuditEntry(Action.INVOICE_SENT, description="x", entity=invoice))

    rows(1)
    founder_client.get(URL)  # the token's last use is recorded once, on the first request
    # the token with its user, (PostgreSQL) the late rows of audit.timeline, the page; then the
    # leads' and the invoices' names
    feed = 3 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(feed + 2):
        small = founder_client.get(URL)
    rows(10)
    with django_assert_num_queries(feed + 2):
        large = founder_client.get(URL)

    assert len(small.json()["logs"]) < len(large.json()["logs"])
    assert all(e["entityLabel"] for e in large.json()["logs"] if e["entityType"])


def test_an_invoice_history_includes_its_payments_rows_and_no_other_invoice_s(
    founder_client, founder
):
    invoice = make_converted_invoice(actor=founder, paid="50.00")
    later = _pay_later(invoice, founder)
    other = make_converted_invoice(actor=founder, paid="20.00")
    first = Payment.objects.get(invoice=invoice, pk__lt=later.pk)

    response = founder_client.get(URL, {"entityType": "Invoice", "entityId": invoice.pk})

    entries = response.json()["logs"]
    assert [(e["action"], e["entityType"], e["entityId"]) for e in entries] == [
        (Action.PAYMENT_RECEIVED, "Payment", str(later.pk)),
        (Action.PAYMENT_RECEIVED, "Payment", str(first.pk)),
        (Action.LEAD_TO_STUDENT_CONVERSION, "Invoice", str(invoice.pk)),
        (Action.INVOICE_GENERATED, "Invoice", str(invoice.pk)),
    ]
    assert entries[0]["entityLabel"] == f"€10.00 on {invoice.number}"
    assert other.number not in str(entries)


def test_an_invoice_history_polled_with_after_brings_a_new_payment(founder_client, founder):
    invoice = make_converted_invoice(actor=founder)
    cursor = founder_client.get(URL, {"entityType": "Invoice", "entityId": invoice.pk}).json()[
        "nextCursor"
    ]
    later = _pay_later(invoice, founder)

    response = founder_client.get(
        URL, {"entityType": "Invoice", "entityId": invoice.pk, "after": cursor}
    )

    assert [(e["entityType"], e["entityId"]) for e in response.json()["logs"]] == [
        ("Payment", str(later.pk))
    ]


def test_a_payment_s_own_history_is_its_rows_only(founder_client, founder):
    invoice = make_converted_invoice(actor=founder)
    payment = Payment.objects.get(invoice=invoice)

    response = founder_client.get(URL, {"entityType": "Payment", "entityId": payment.pk})

    assert [e["action"] for e in response.json()["logs"]] == [Action.PAYMENT_RECEIVED]


def test_the_export_of_an_invoice_history_has_its_payments_and_the_names(founder_client, founder):
    invoice = make_converted_invoice(actor=founder)
    payment = Payment.objects.get(invoice=invoice)

    response = founder_client.get(
        EXPORT, {"format": "csv", "entityType": "Invoice", "entityId": invoice.pk}
    )

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["entityType"], r["entityId"], r["entityLabel"]) for r in rows] == [
        ("Invoice", str(invoice.pk), invoice.number),
        ("Invoice", str(invoice.pk), invoice.number),
        ("Payment", str(payment.pk), f"€50.00 on {invoice.number}"),
    ]


def test_since_a_date_is_that_day_s_midnight_in_india(founder_client, founder):
    # The dashboard's "today" for a person: ?userId=3&since=2026-12-01.
    ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    midnight = datetime.datetime(2026, 12, 1, tzinfo=ist)
    for minutes, text in ((-1, "before"), (1, "after")):
        AuditLog.objects.create(
            action=Action.LEAD_UPDATED,
            description=text,
            user_id=founder.pk,
            created_at=midnight + datetime.timedelta(minutes=minutes),
        )

    response = founder_client.get(URL, {"userId": founder.pk, "since": "2026-12-01"})

    assert [e["description"] for e in response.json()["logs"]] == ["after"]
