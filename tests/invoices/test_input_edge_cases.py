"""Bad input that once reached the database or the parser and came back as a 500."""

import json

import pytest
from django.test import Client

from audit.models import AuditLog
from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db


def patch(client, url, body):
    return client.patch(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("item", [{"amount": "10.00"}, {"description": "Course"}])
def test_patching_items_without_description_or_amount_is_a_400_and_changes_nothing(
    marketing_client, marketing, item
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    rows_before = AuditLog.objects.count()

    response = patch(marketing_client, f"/api/invoices/{invoice.pk}", {"items": [item]})

    assert response.status_code == 400
    missing = "description" if "amount" in item else "amount"
    assert response.json()["details"] == {f"items.0.{missing}": ["This field is required."]}
    invoice.refresh_from_db()
    assert [i.amount for i in invoice.items.all()] == [134]
    assert AuditLog.objects.count() == rows_before


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A3", "1e2", "-5"])
def test_a_lead_id_that_is_not_ascii_digits_is_a_400(marketing_client, raw):
    response = marketing_client.get(f"/api/invoices?leadId={raw}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_the_pdf_is_served_to_a_client_that_accepts_only_pdf(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)

    response = marketing_client.get(
        f"/api/invoices/{invoice.pk}/pdf", HTTP_ACCEPT="application/pdf"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_an_unknown_invoice_pdf_is_still_a_json_404(marketing_client):
    response = marketing_client.get("/api/invoices/999999/pdf")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_cancel_page_refuses_a_too_long_reason_and_does_not_cancel(marketing):
    invoice = make_invoice(actor=marketing)
    client = Client()
    client.force_login(marketing)

    response = client.post(f"/invoices/{invoice.pk}/cancel/", {"reason": "x" * 1001}, follow=True)

    invoice.refresh_from_db()
    assert invoice.status == "DRAFT"
    assert not AuditLog.objects.filter(action="INVOICE_CANCELLED").exists()
    assert b"The invoice was not cancelled" in response.content
