"""Bad input that once reached the database or the parser and came back as a 500."""

import json

import pytest
from django.test import Client

from audit.models import AuditLog
from leads.models import Lead

pytestmark = pytest.mark.django_db


def post(client, url, data):
    return client.post(url, data, content_type="application/json")


def test_a_whatsapp_number_in_other_scripts_digits_is_refused(marketing_client):
    # "+91 98470 12345" in Arabic-Indic digits: stored as-is it would be a second spelling of a
    # number that must be unique among students.
    body = {
        "name": "A",
        "whatsapp": "+91" + "".join(chr(0x0660 + int(d)) for d in "9847012345"),
        "source": "OTHER",
    }

    response = post(marketing_client, "/api/leads", json.dumps(body))

    assert response.status_code == 400
    assert "whatsapp" in response.json()["details"]
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A3", "0", "201", "abc"])
def test_a_limit_that_is_not_1_to_200_in_ascii_digits_is_a_400(marketing_client, raw):
    response = marketing_client.get(f"/api/leads?limit={raw}")
    assert response.status_code == 400
    assert response.json()["details"] == {"limit": ["Use a whole number from 1 to 200."]}


@pytest.mark.parametrize(
    "url", ["/api/leads?q=%00", "/api/students?q=%00", "/api/leads?q=" + "x" * 101]
)
def test_a_search_with_a_nul_character_or_too_long_is_a_400(marketing_client, url):
    response = marketing_client.get(url)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_deeply_nested_json_is_malformed_json_not_a_500(marketing_client):
    response = post(marketing_client, "/api/leads", "[" * 100000 + "]" * 100000)

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert Lead.objects.count() == 0
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()


def test_the_lead_form_refuses_an_email_longer_than_the_column(marketing):
    client = Client()
    client.force_login(marketing)
    email = "a" * 280 + "@example.com"

    response = client.post(
        "/leads/new/",
        {"name": "Long Mail", "whatsapp": "+919847012345", "source": "OTHER", "email": email},
    )

    assert response.status_code == 400
    assert "email" in response.context["form"].errors
    assert Lead.objects.count() == 0
