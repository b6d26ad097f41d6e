"""Under /api/ every answer is JSON in the error contract, 404 and 405 included (CONTRACT §2)."""

from __future__ import annotations

import pytest

from audit.models import AuditLog

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "teacher", "marketing", "founder"]


@pytest.mark.parametrize("persona_client", PERSONAS, indirect=True)
@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/leads/", "/api/leads/abc", "/api/"])
def test_an_unknown_api_path_is_a_json_404(persona_client, path):
    response = persona_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "There is nothing at this address.",
        "code": "not_found",
        "details": {},
    }
    assert not AuditLog.objects.exists()


def test_pages_outside_the_api_keep_the_html_404(founder):
    from django.test import Client

    client = Client()
    client.force_login(founder)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/leads"),
        ("delete", "/api/me"),
        ("post", "/api/system/livez"),
        ("put", "/api/schema"),
        ("put", "/api/docs"),
        ("patch", "/api/invoices"),
    ],
)
def test_a_method_not_allowed_is_a_json_405(founder_client, method, path):
    response = getattr(founder_client, method)(path)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "method_not_allowed"
    assert "Allow" in response
    assert not AuditLog.objects.exists()


def test_the_schema_refuses_an_anonymous_caller_in_json(anon_client):
    # Its own renderers are YAML and JSON-for-OpenAPI; the 401 was YAML.
    response = anon_client.get("/api/schema")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_authenticated"


def test_the_schema_answers_an_unacceptable_accept_header_in_json(founder_client):
    response = founder_client.get("/api/schema", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_acceptable"


def test_the_schema_itself_is_still_served_as_openapi(founder_client):
    response = founder_client.get("/api/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")


@pytest.mark.parametrize("path", ["/api/leads", "/api/me", "/api/system/audit-logs"])
def test_options_is_a_405_not_a_description_of_the_endpoint(founder_client, path):
    # The schema (for staff) describes the API; OPTIONS used to describe each endpoint to anyone
    # authenticated, and answered 200 where the schema documents no such operation.
    response = founder_client.options(path)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.urls("tests.api.urls_failing")
def test_a_failure_outside_a_drf_view_is_a_json_500_with_the_request_id():
    from django.test import Client

    response = Client(raise_request_exception=False).get("/api/test/plain-explode")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "Something went wrong on our side. It has been recorded; quote the request id.",
        "code": "internal_error",
        "requestId": response["X-Request-ID"],
    }
    # Recorded once, by the request middleware, as for any page.
    assert list(AuditLog.objects.values_list("action", "severity")) == [("SYSTEM_ERROR", "ERROR")]


def test_a_request_django_refuses_before_routing_is_a_json_400():
    from django.test import Client

    response = Client(HTTP_HOST="not-our-host.example").get("/api/leads")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "bad_request"
    assert not AuditLog.objects.exists()
