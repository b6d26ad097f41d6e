import json

import pytest
from django.test import Client

from audit.models import AuditLog
from invoices.models import Invoice, InvoiceCounter
from tests.concurrency import run_concurrently
from tests.factories import make_lead, make_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

BODY = json.dumps({"currency": "EUR", "items": [{"description": "A1 course", "amount": "134"}]})


def test_concurrent_generation_gives_gapless_unique_numbers(marketing):
    token = make_token(marketing)
    leads = [make_lead() for _ in range(12)]

    def generate(lead_id):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(f"/api/leads/{lead_id}/invoice", BODY, content_type="application/json")

    responses = run_concurrently([lambda pk=lead.pk: generate(pk) for lead in leads])

    assert [r.status_code for r in responses] == [201] * 12
    sequences = sorted(Invoice.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, 13))
    numbers = {r.json()["invoiceNumber"] for r in responses}
    assert len(numbers) == 12
    assert AuditLog.objects.filter(action="INVOICE_GENERATED").count() == 12


def test_a_generation_failing_after_the_number_was_drawn_gives_the_number_back(
    marketing_client, marketing, owner_connection
):
    lead = make_lead()
    # A real database failure after the counter was incremented: the item insert is refused
    # (a constraint only the owner may add).
    with owner_connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE invoices_invoiceitem ADD CONSTRAINT test_refuse_items CHECK (amount < 0)"
        )
    try:
        failed = marketing_client.post(
            f"/api/leads/{lead.pk}/invoice", BODY, content_type="application/json"
        )
    finally:
        with owner_connection.cursor() as cursor:
            cursor.execute("ALTER TABLE invoices_invoiceitem DROP CONSTRAINT test_refuse_items")

    assert failed.status_code == 500
    assert failed.json()["code"] == "internal_error"
    assert Invoice.objects.count() == 0
    assert InvoiceCounter.objects.filter(last_number__gt=0).count() == 0
    [row] = AuditLog.objects.all()
    assert (row.action, row.severity, row.entity_type, row.entity_id) == (
        "INVOICE_GENERATED",
        "ERROR",
        "Lead",
        str(lead.pk),
    )
    assert (row.metadata["totalAmount"], row.metadata["outcome"]) == ("134.00", "rolled_back")
    assert "test_refuse_items" in row.error_message

    retried = marketing_client.post(
        f"/api/leads/{lead.pk}/invoice", BODY, content_type="application/json"
    )

    assert (retried.status_code, retried.json()["invoiceNumber"][-4:]) == (201, "0001")
