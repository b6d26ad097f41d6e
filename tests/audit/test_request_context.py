import pytest

from audit.models import AuditLog

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.audit.urls_failing")]


def test_every_response_carries_a_new_request_id(anon_client):
    response = anon_client.get("/test/ok")
    assert len(response["X-Request-ID"]) == 32


def test_a_well_formed_incoming_request_id_is_echoed(anon_client):
    response = anon_client.get("/test/ok", HTTP_X_REQUEST_ID="lb-123.abc_DEF")
    assert response["X-Request-ID"] == "lb-123.abc_DEF"


@pytest.mark.parametrize("bad", ["a" * 65, "has space", "semi;colon", "<script>"])
def test_a_malformed_incoming_request_id_is_replaced(anon_client, bad):
    response = anon_client.get("/test/ok", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_rows_written_in_a_request_carry_who_where_and_the_request_id(marketing_client, marketing):
    response = marketing_client.post(
        "/api/test/audited",
        data={},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-1",
        HTTP_USER_AGENT="pytest-agent/1.0",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 201
    row = AuditLog.objects.get()
    assert (row.request_id, row.request_path, row.request_method) == (
        "req-1",
        "/api/test/audited",
        "POST",
    )
    assert (row.ip_address, row.user_agent, row.source) == (
        "203.0.113.9",
        "pytest-agent/1.0",
        "REQUEST",
    )
    assert (row.user_id, row.user_email, row.user_name) == (
        marketing.pk,
        marketing.email,
        marketing.name,
    )
    assert row.metadata == {"password": "[REDACTED]"}


def test_forwarded_for_is_ignored_without_trusted_proxies(marketing_client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    marketing_client.post(
        "/api/test/audited",
        data={},
        content_type="application/json",
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="1.2.3.4",
    )
    assert AuditLog.objects.get().ip_address == "10.0.0.5"


def test_with_one_trusted_proxy_the_rightmost_forwarded_address_is_the_client(
    marketing_client, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    # A client forged "6.6.6.6"; our proxy appended the address it really saw.
    marketing_client.post(
        "/api/test/audited",
        data={},
        content_type="application/json",
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7",
    )
    assert AuditLog.objects.get().ip_address == "198.51.100.7"


def test_with_two_trusted_proxies_the_second_from_the_right_is_the_client(
    marketing_client, settings
):
    settings.TRUSTED_PROXY_COUNT = 2
    marketing_client.post(
        "/api/test/audited",
        data={},
        content_type="application/json",
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7, 10.0.0.4",
    )
    assert AuditLog.objects.get().ip_address == "198.51.100.7"


def test_a_short_forwarded_header_falls_back_to_the_peer_address(marketing_client, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    marketing_client.post(
        "/api/test/audited",
        data={},
        content_type="application/json",
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    assert AuditLog.objects.get().ip_address == "10.0.0.5"


def test_unhandled_api_error_is_a_500_with_the_request_id_and_an_api_error_row(marketing_client):
    response = marketing_client.post(
        "/api/test/explode", data={}, content_type="application/json", HTTP_X_REQUEST_ID="req-500"
    )

    assert response.status_code == 500
    assert response["X-Request-ID"] == "req-500"
    assert response.json() == {
        "error": "Something went wrong on our side. It has been recorded; quote the request id.",
        "code": "internal_error",
        "requestId": "req-500",
    }
    row = AuditLog.objects.get()
    assert (row.action, row.severity, row.request_id) == ("API_ERROR", "ERROR", "req-500")
    assert row.error_message == "RuntimeError: database password=[REDACTED] leaked into a message"
    assert "hunter2" not in row.error_stack
    assert "hunter2" not in response.content.decode()


def test_unhandled_page_error_writes_a_system_error_row(founder, settings):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(founder)
    response = client.get("/test/explode", HTTP_X_REQUEST_ID="req-page")

    assert response.status_code == 500
    row = AuditLog.objects.get()
    assert (row.action, row.severity, row.request_id) == ("SYSTEM_ERROR", "ERROR", "req-page")


def test_malformed_json_is_a_400_and_writes_nothing(marketing_client):
    response = marketing_client.post(
        "/api/test/audited", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert AuditLog.objects.count() == 0


def test_an_https_redirect_carries_a_request_id_too(anon_client, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = anon_client.get("/test/ok", HTTP_X_REQUEST_ID="req-redirect")

    assert response.status_code == 301
    assert response["X-Request-ID"] == "req-redirect"
