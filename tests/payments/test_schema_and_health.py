"""The money flows as the rest of the system sees them: the API schema and the health body."""

import json

import pytest

from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db


def test_the_schema_describes_the_money_endpoints(founder_client):
    schema = founder_client.get("/api/schema", HTTP_ACCEPT="application/json").json()

    paths = schema["paths"]
    for path in (
        "/api/leads",
        "/api/leads/{lead_id}",
        "/api/leads/{lead_id}/invoice",
        "/api/invoices",
        "/api/invoices/{invoice_id}/pay-and-convert",
        "/api/invoices/{invoice_id}/payments",
        "/api/students",
    ):
        assert path in paths, path
    convert = schema["components"]["schemas"]["PayAndConvertInput"]["properties"]
    assert {"paidAmount", "method", "transactionId", "batchId", "idempotencyKey"} <= set(convert)


def test_a_conversion_shows_in_the_founders_health_body(
    marketing_client, founder_client, marketing
):
    invoice = make_invoice(actor=marketing)
    marketing_client.post(
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        json.dumps({"paidAmount": "50.00", "idempotencyKey": "health-key-01"}),
        content_type="application/json",
    )

    checks = founder_client.get("/api/system/health").json()["checks"]

    assert (checks["recentActivity"]["conversions"], checks["recentActivity"]["payments"]) == (1, 1)
    metrics = checks["systemMetrics"]
    assert (metrics["students"], metrics["invoices"], metrics["payments"]) == (1, 1, 1)
