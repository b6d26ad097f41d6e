import datetime
import email
import json

import pytest
import time_machine

from audit.models import AuditLog
from invoices.models import Invoice, InvoiceCounter
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db


def post(client, url, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data, content_type="application/json")


def body(**overrides):
    return {
        "currency": "EUR",
        "items": [
            {"description": "German Language Course", "amount": "134.00", "level": "A1"},
            {"description": "German Language Course", "amount": 156, "level": "A2"},
        ],
        "discount": "40.50",
        "payableNow": "100.00",
        **overrides,
    }


@time_machine.travel(datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.UTC), tick=False)
def test_generating_an_invoice_stores_and_returns_every_amount(marketing_client):
    lead = make_lead(name="Arjun Nair")

    response = post(marketing_client, f"/api/leads/{lead.pk}/invoice", body())

    assert response.status_code == 201
    data = response.json()
    invoice = Invoice.objects.get()
    assert {k: data[k] for k in data if k not in ("items", "createdAt", "sentAt")} == {
        "id": invoice.pk,
        "invoiceNumber": "PB-2026-0001",
        "leadId": lead.pk,
        "leadName": "Arjun Nair",
        "studentId": None,
        "status": "DRAFT",
        "currency": "EUR",
        "subtotal": "290.00",
        "discount": "40.50",
        "totalAmount": "249.50",
        "payableNow": "100.00",
        "paidAmount": "0.00",
        "remainingAmount": "249.50",
        "issueDate": "2026-03-02",
        "dueDate": "2026-03-09",
        "notes": "",
        "cancelReason": "",
    }
    assert [(i["description"], i["amount"], i["level"]) for i in data["items"]] == [
        ("German Language Course", "134.00", "A1"),
        ("German Language Course", "156.00", "A2"),
    ]
    row = AuditLog.objects.get(action="INVOICE_GENERATED")
    assert (row.entity_type, row.entity_id) == ("Invoice", str(invoice.pk))
    assert {k: row.metadata[k] for k in row.metadata if k != "items"} == {
        "invoiceNumber": "PB-2026-0001",
        "leadId": lead.pk,
        "leadName": "Arjun Nair",
        "currency": "EUR",
        "subtotal": "290.00",
        "discount": "40.50",
        "totalAmount": "249.50",
        "payableNow": "100.00",
        "paidAmount": "0.00",
        "remainingAmount": "249.50",
        "remainingAfterPayableNow": "149.50",
        "dueDate": "2026-03-09",
    }


def test_payable_now_defaults_to_the_total_and_null_is_refused(marketing_client):
    lead = make_lead()

    data = post(
        marketing_client, f"/api/leads/{lead.pk}/invoice", body(payableNow=None) | {"discount": 0}
    )

    assert data.status_code == 400  # null is not an amount
    response = post(
        marketing_client,
        f"/api/leads/{lead.pk}/invoice",
        {"currency": "INR", "items": [{"description": "A1", "amount": "14000"}]},
    )
    assert response.status_code == 201
    assert (response.json()["payableNow"], response.json()["totalAmount"]) == (
        "14000.00",
        "14000.00",
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(discount="-1.00"), "discount"),
        (body(discount="290.00"), "discount"),
        (body(payableNow="0"), "payableNow"),
        (body(payableNow="249.51"), "payableNow"),
        (body(payableNow="NaN"), "payableNow"),
        (body(payableNow="Infinity"), "payableNow"),
        (body(payableNow="1e3"), "payableNow"),
        ('{"currency": "EUR", "items": [{"description": "A1", "amount": 1e3}]}', "items.0.amount"),
        (
            '{"currency": "EUR", "items": [{"description": "A1", "amount": 13.999}]}',
            "items.0.amount",
        ),
        (body(items=[{"description": "A1", "amount": "134.001"}]), "items.0.amount"),
        (body(items=[{"description": "A1", "amount": "-134"}]), "items.0.amount"),
        (body(items=[{"description": "A1", "amount": "0"}]), "items.0.amount"),
        (body(items=[{"description": "A1", "amount": "1000000.01"}]), "items.0.amount"),
        (body(items=[{"description": "A1", "amount": True}]), "items.0.amount"),
        (body(items=[{"description": "", "amount": "1"}]), "items.0.description"),
        (body(items=[]), "items"),
        (body(items=[{"description": "A1", "amount": "10"}] * 21), "items"),
        (body(currency="USD"), "currency"),
        (body(dueDate="2020-01-01"), "dueDate"),
        (body(dueDate="next week"), "dueDate"),
    ],
)
def test_each_bad_invoice_input_is_a_400_naming_the_field_and_draws_no_number(
    marketing_client, payload, field
):
    lead = make_lead()

    response = post(marketing_client, f"/api/leads/{lead.pk}/invoice", payload)

    assert response.status_code == 400
    assert list(response.json()["details"]) == [field]
    assert Invoice.objects.count() == 0
    assert InvoiceCounter.objects.filter(last_number__gt=0).count() == 0
    assert AuditLog.objects.count() == 0


@pytest.mark.parametrize("raw", ['{"currency": "EUR", "items": [', '{"amount": NaN}', "[1, 2"])
def test_malformed_json_is_a_400(marketing_client, raw):
    lead = make_lead()

    response = post(marketing_client, f"/api/leads/{lead.pk}/invoice", raw)

    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")
    assert Invoice.objects.count() == 0


def test_invoice_for_unknown_lead_is_a_404_and_for_converted_lead_a_409(
    marketing_client, marketing
):
    converted = make_converted_invoice(actor=marketing).lead

    missing = post(marketing_client, "/api/leads/999999/invoice", body())
    refused = post(marketing_client, f"/api/leads/{converted.pk}/invoice", body())

    assert missing.status_code == 404
    assert (refused.status_code, refused.json()["code"]) == (409, "lead_converted")
    assert Invoice.objects.count() == 1


def test_numbers_are_sequential_per_calendar_year(marketing):
    with time_machine.travel(datetime.datetime(2026, 12, 31, 12, 0, tzinfo=datetime.UTC)):
        first = make_invoice(actor=marketing)
        second = make_invoice(actor=marketing)
    with time_machine.travel(datetime.datetime(2027, 1, 1, 12, 0, tzinfo=datetime.UTC)):
        third = make_invoice(actor=marketing)

    assert [first.number, second.number, third.number] == [
        "PB-2026-0001",
        "PB-2026-0002",
        "PB-2027-0001",
    ]


def test_a_cancelled_invoice_keeps_its_number_and_the_next_one_moves_on(
    marketing_client, marketing
):
    first = make_invoice(actor=marketing)

    response = post(marketing_client, f"/api/invoices/{first.pk}/cancel", {"reason": "duplicate"})
    second = make_invoice(actor=marketing)

    assert (response.status_code, response.json()["status"]) == (200, "CANCELLED")
    assert second.sequence == first.sequence + 1
    row = AuditLog.objects.get(action="INVOICE_CANCELLED")
    assert (row.metadata["reason"], row.metadata["statusBefore"]) == ("duplicate", "DRAFT")


def test_an_invoice_with_money_received_cannot_be_cancelled(marketing_client, marketing):
    invoice = make_converted_invoice(actor=marketing)

    response = post(marketing_client, f"/api/invoices/{invoice.pk}/cancel", {})

    assert (response.status_code, response.json()["code"]) == (409, "invoice_has_payments")
    invoice.refresh_from_db()
    assert invoice.status == "PARTIALLY_PAID"


def test_patch_recomputes_totals_and_records_before_and_after(marketing_client, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))

    response = marketing_client.patch(
        f"/api/invoices/{invoice.pk}",
        json.dumps({"discount": "14.00", "notes": "family discount"}),
        content_type="application/json",
    )

    assert response.status_code == 200
    data = response.json()
    assert (data["totalAmount"], data["payableNow"], data["remainingAmount"]) == (
        "120.00",
        "120.00",
        "120.00",
    )
    row = AuditLog.objects.get(action="INVOICE_UPDATED")
    assert row.metadata["changes"] == {
        "discount": {"before": "0.00", "after": "14.00"},
        "totalAmount": {"before": "134.00", "after": "120.00"},
        "payableNow": {"before": "134.00", "after": "120.00"},
        "notes": {"before": "", "after": "family discount"},
    }


def test_patch_of_a_paid_or_cancelled_invoice_is_a_409(marketing_client, marketing):
    paid = make_converted_invoice(actor=marketing, paid="134.00")

    response = marketing_client.patch(
        f"/api/invoices/{paid.pk}", json.dumps({"notes": "x"}), content_type="application/json"
    )

    assert (response.status_code, response.json()["code"]) == (409, "invoice_not_editable")
    assert not AuditLog.objects.filter(action="INVOICE_UPDATED").exists()


def test_invoice_list_is_newest_first_filters_by_status_and_pins_its_queries(
    marketing_client, marketing, django_assert_num_queries
):
    first = make_invoice(actor=marketing)
    paid = make_converted_invoice(actor=marketing, paid="134.00")
    last = make_invoice(actor=marketing, amounts=("100.00", "34.00"))
    marketing_client.get("/api/invoices")

    with django_assert_num_queries(3):  # token, invoices with lead and student, items
        response = marketing_client.get("/api/invoices")
    only_paid = marketing_client.get("/api/invoices?status=PAID").json()["results"]

    assert [i["id"] for i in response.json()["results"]] == [last.pk, paid.pk, first.pk]
    assert [i["id"] for i in only_paid] == [paid.pk]
    assert only_paid[0]["studentId"].startswith("STU-")
    assert marketing_client.get("/api/invoices?status=LOST").status_code == 400


def test_the_pdf_is_a_real_pdf_named_after_the_invoice(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)

    response = marketing_client.get(f"/api/invoices/{invoice.pk}/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert f"Invoice {invoice.number}".encode() in response.content  # the document title
    assert response["Content-Disposition"] == f'inline; filename="{invoice.number}.pdf"'


def test_unknown_invoice_is_a_404_everywhere(marketing_client):
    for method, path in [
        ("get", "/api/invoices/999999"),
        ("patch", "/api/invoices/999999"),
        ("post", "/api/invoices/999999/send"),
        ("post", "/api/invoices/999999/cancel"),
        ("get", "/api/invoices/999999/pdf"),
    ]:
        if method == "get":
            response = marketing_client.get(path)
        else:
            response = getattr(marketing_client, method)(
                path, "{}", content_type="application/json"
            )
        assert response.status_code == 404, path


# --- sending -------------------------------------------------------------------------------


def test_send_mails_the_pdf_and_marks_the_invoice_sent(marketing_client, marketing, smtp_server):
    invoice = make_invoice(actor=marketing, lead=make_lead(email="arjun@example.com"))

    response = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert (response.status_code, response.json()["status"]) == (200, "SENT")
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["arjun@example.com"]
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"] == f"Your Plan Beta invoice {invoice.number}"
    [attachment] = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    assert attachment.get_payload(decode=True).startswith(b"%PDF-")
    actions = list(AuditLog.objects.order_by("id").values_list("action", "severity"))
    assert actions[-2:] == [("EMAIL_SENT", "INFO"), ("INVOICE_SENT", "INFO")]


def test_send_with_the_mail_server_down_keeps_the_invoice_unsent_and_can_be_retried(
    marketing_client, marketing, smtp_down, settings
):
    invoice = make_invoice(actor=marketing, lead=make_lead(email="arjun@example.com"))

    response = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert (response.status_code, response.json()["code"]) == (502, "email_failed")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.sent_at) == ("DRAFT", None)
    row = AuditLog.objects.get(action="EMAIL_FAILED")
    assert (row.severity, row.entity_id) == ("ERROR", str(invoice.pk))
    assert row.metadata["invoiceNumber"] == invoice.number
    assert row.error_message.startswith("MailError: SMTP unavailable: ConnectionRefusedError")
    assert not AuditLog.objects.filter(action__in=["EMAIL_SENT", "INVOICE_SENT"]).exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # back up
    retry = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert (retry.status_code, retry.json()["status"]) == (200, "SENT")


def test_send_refused_by_the_mail_server_is_an_email_failed_row(
    marketing_client, marketing, smtp_server
):
    smtp_server.refuse = True
    invoice = make_invoice(actor=marketing, lead=make_lead(email="arjun@example.com"))

    response = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert response.status_code == 502
    invoice.refresh_from_db()
    assert invoice.status == "DRAFT"
    row = AuditLog.objects.get(action="EMAIL_FAILED")
    assert row.metadata["retryable"] is False
    assert smtp_server.messages == []


def test_send_needs_an_email_address_and_an_open_invoice(marketing_client, marketing, mailoutbox):
    no_email = make_invoice(actor=marketing, lead=make_lead(email=""))
    paid = make_converted_invoice(actor=marketing, paid="134.00")

    first = marketing_client.post(f"/api/invoices/{no_email.pk}/send")
    second = marketing_client.post(f"/api/invoices/{paid.pk}/send")

    assert (first.status_code, first.json()["code"]) == (400, "lead_has_no_email")
    assert (second.status_code, second.json()["code"]) == (409, "invoice_not_sendable")
    assert mailoutbox == []


# --- roles ---------------------------------------------------------------------------------

EXPECTED = {"anonymous": 401, "teacher": 403, "marketing": None, "founder": None}


@pytest.mark.parametrize("persona_client", list(EXPECTED), indirect=True)
@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("post", "/api/leads/{lead}/invoice", 201),
        ("get", "/api/invoices", 200),
        ("get", "/api/invoices/{invoice}", 200),
        ("patch", "/api/invoices/{invoice}", 200),
        ("post", "/api/invoices/{invoice}/send", 200),
        ("post", "/api/invoices/{invoice}/cancel", 200),
        ("get", "/api/invoices/{invoice}/pdf", 200),
    ],
)
def test_invoice_api_role_matrix(persona_client, request, marketing, method, path, ok, mailoutbox):
    persona = request.node.callspec.params["persona_client"]
    invoice = make_invoice(actor=marketing)
    url = path.format(lead=invoice.lead_id, invoice=invoice.pk)
    payload = json.dumps(body() if "invoice" in path.split("/")[-1] else {"notes": "n"})
    if method == "get":
        response = persona_client.get(url)
    else:
        response = getattr(persona_client, method)(url, payload, content_type="application/json")

    assert response.status_code == (EXPECTED[persona] or ok)
    if EXPECTED[persona]:
        assert Invoice.objects.count() == 1
        assert Invoice.objects.get().status == "DRAFT"
        assert mailoutbox == []


def test_the_pdf_copes_with_names_outside_latin_1(marketing_client, marketing):
    lead = make_lead(name="അനു Müller")
    invoice = make_invoice(actor=marketing, lead=lead)
    Invoice.objects.filter(pk=invoice.pk).update(notes="€ 50 paid in cash, danke schön")

    response = marketing_client.get(f"/api/invoices/{invoice.pk}/pdf")

    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


def test_send_answered_later_by_the_mail_server_is_a_retryable_email_failed_row(
    marketing_client, marketing, smtp_server
):
    smtp_server.data_reply = "451 4.3.0 Local error, try again later"
    invoice = make_invoice(actor=marketing, lead=make_lead(email="arjun@example.com"))

    response = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert (response.status_code, response.json()["code"]) == (502, "email_failed")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.sent_at) == ("DRAFT", None)
    row = AuditLog.objects.get(action="EMAIL_FAILED")
    assert row.metadata["retryable"] is True
    assert row.error_message == "MailError: SMTP 451: 4.3.0 Local error, try again later"
    assert smtp_server.messages == []
    assert not AuditLog.objects.filter(action__in=["EMAIL_SENT", "INVOICE_SENT"]).exists()
