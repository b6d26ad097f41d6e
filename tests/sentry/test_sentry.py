import json

import pytest
import sentry_sdk
from celery import signals
from django.test import Client

from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent
from planbeta.sentry import init_sentry, sentry_options
from tests.factories import make_token

pytestmark = pytest.mark.urls("tests.sentry.urls")


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.django_db
def test_error_in_a_view_arrives_once_without_credentials_cookies_or_query(sentry, wsgi, founder):
    session_key = _session_cookie(founder)

    status, headers, _ = wsgi(
        "GET",
        "/test/explode?token=abc123&invoice=7",
        HTTP_COOKIE=f"sessionid={session_key}; csrftoken=c5rf; tracking=s3cr3t",
        HTTP_AUTHORIZATION="Bearer pb_supersecret",
        HTTP_X_API_KEY="key-123",
        HTTP_X_REQUEST_ID="req-abc-123",
        HTTP_USER_AGENT="pytest-browser",
    )

    assert status == 500
    assert headers["X-Request-ID"] == "req-abc-123"
    events = sentry.events()
    assert len(events) == 1
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["environment"] == "production"
    assert event["release"] == "1.2.3"
    assert event["tags"]["request_id"] == "req-abc-123"
    assert event["user"] == {"id": str(founder.pk), "role": "FOUNDER"}
    request = event["request"]
    assert request["url"] == "http://testserver/test/explode"
    assert request["method"] == "GET"
    assert request["headers"]["User-Agent"] == "pytest-browser"
    assert "query_string" not in request
    assert "cookies" not in request
    assert "data" not in request
    assert {name.lower() for name in request["headers"]}.isdisjoint(
        {"authorization", "cookie", "x-api-key"}
    )
    assert event["extra"]["payment"] == {
        "amount": "134.00",
        "apiKey": "[REDACTED]",
        "invoice": 7,
    }
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert all("vars" not in frame for frame in frames)
    raw = json.dumps(event)
    for secret in ("abc123", "s3cr3t", "c5rf", "pb_supersecret", "key-123", "hunter2", session_key):
        assert secret not in raw


@pytest.mark.django_db
def test_api_error_arrives_once_with_the_audit_request_id_and_without_the_body(
    sentry, wsgi, founder
):
    token = make_token(founder)

    status, _, body = wsgi(
        "POST",
        "/api/test/explode",
        data=json.dumps({"password": "hunter2", "amount": "134.00"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_REQUEST_ID="req-9",
    )

    assert status == 500
    assert json.loads(body)["requestId"] == "req-9"
    events = sentry.events()
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["ValueError"]
    event = events[0]
    assert event["tags"]["request_id"] == "req-9"
    assert event["tags"]["audit_action"] == "API_ERROR"
    assert event["user"] == {"id": str(founder.pk), "role": "FOUNDER"}
    assert "data" not in event["request"]
    assert "Authorization" not in event["request"]["headers"]
    assert token not in json.dumps(event)
    assert "hunter2" not in json.dumps(event)


@pytest.mark.django_db
def test_error_rows_without_an_exception_reach_sentry_once_each(
    sentry, django_capture_on_commit_callbacks
):
    failed = audit_record_independent(
        AuditEntry(
            Action.EMAIL_FAILED,
            severity=Severity.ERROR,
            description="Invoice e-mail to Priya Raman bounced",
            entity_type="Invoice",
            entity_id=7,
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(
            AuditEntry(Action.SYSTEM_ERROR, severity=Severity.CRITICAL, description="ledger off")
        )
    audit_record_independent(
        AuditEntry(Action.LOGIN_FAILED, severity=Severity.WARNING, description="typo")
    )

    events = sentry.events()
    assert sorted((e["message"], e["level"]) for e in events) == [
        ("CRITICAL audit event: SYSTEM_ERROR", "fatal"),
        ("ERROR audit event: EMAIL_FAILED", "error"),
    ]
    email_event = next(e for e in events if e["tags"]["audit_action"] == "EMAIL_FAILED")
    assert email_event["extra"]["audit_id"] == failed.pk
    assert email_event["extra"]["entity"] == "Invoice 7"
    assert "Priya" not in json.dumps(events)


@pytest.mark.django_db
def test_transactions_are_scrubbed_and_system_probes_are_never_traced(sentry, wsgi):
    for path in ("/test/ok?token=abc123", "/api/system/probe"):
        status, _, _ = wsgi(
            "GET", path, HTTP_COOKIE="sessionid=s3cr3t", HTTP_AUTHORIZATION="Bearer pb_x"
        )
        assert status == 200

    transactions = sentry.transactions()
    assert [t["transaction"] for t in transactions] == ["/test/ok"]
    request = transactions[0]["request"]
    assert "cookies" not in request and "query_string" not in request
    assert "Authorization" not in request["headers"]
    assert "abc123" not in json.dumps(transactions[0])
    assert "s3cr3t" not in json.dumps(transactions[0])


def test_traces_sampler_uses_the_configured_rate_and_skips_system_paths():
    sampler = sentry_options(dsn="", environment="production", release="", traces_sample_rate=0.25)[
        "traces_sampler"
    ]

    assert sampler({"wsgi_environ": {"PATH_INFO": "/api/system/health"}}) == 0.0
    assert sampler({"wsgi_environ": {"PATH_INFO": "/api/system/readyz"}}) == 0.0
    assert sampler({"wsgi_environ": {"PATH_INFO": "/api/leads"}}) == 0.25
    assert sampler({"celery_job": {"task": "alerts.tasks.sweep_outbox"}}) == 0.25
    assert sampler({"parent_sampled": True, "wsgi_environ": {"PATH_INFO": "/x"}}) == 1.0


@pytest.mark.django_db
def test_nothing_leaves_a_development_environment(ingest, settings, sdk_closed_after):
    settings.SENTRY_DSN = ingest.dsn
    settings.SENTRY_ENVIRONMENT = "development"

    assert init_sentry("web") is False
    response = Client(raise_request_exception=False).get("/test/explode")
    sentry_sdk.capture_message("would be sent if initialised")

    assert response.status_code == 500
    assert sentry_sdk.get_client().is_active() is False
    assert ingest.events() == []
    assert ingest.envelopes == []


@pytest.mark.django_db
def test_production_environment_initialises_with_dsn_release_and_privacy_options(
    ingest, settings, sdk_closed_after
):
    settings.SENTRY_DSN = ingest.dsn
    settings.SENTRY_ENVIRONMENT = "production"
    settings.APP_VERSION = "2026.11.28"

    assert init_sentry("worker") is True
    sentry_sdk.capture_message("hello from the worker")

    options = sentry_sdk.get_client().options
    collection = options["data_collection"]
    assert (collection["user_info"], collection["http_bodies"]) == (False, [])
    assert collection["cookies"]["mode"] == collection["url_query_params"]["mode"] == "off"
    assert collection["stack_frame_variables"] is False
    assert options["max_request_body_size"] == "never"
    [event] = ingest.events()
    assert (event["message"], event["environment"], event["release"]) == (
        "hello from the worker",
        "production",
        "2026.11.28",
    )
    assert event["tags"]["process"] == "worker"


@pytest.mark.django_db
def test_worker_and_beat_initialise_sentry_from_their_celery_signals(
    ingest, settings, sdk_closed_after
):
    settings.SENTRY_DSN = ingest.dsn
    settings.SENTRY_ENVIRONMENT = "production"

    signals.beat_init.send(sender=None)
    sentry_sdk.capture_message("from beat")
    signals.celeryd_init.send(sender=None, instance=None, conf=None)
    sentry_sdk.capture_message("from the worker")

    assert [(e["message"], e["tags"]["process"]) for e in ingest.events()] == [
        ("from beat", "beat"),
        ("from the worker", "worker"),
    ]
