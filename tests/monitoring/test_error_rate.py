"""The error rate that health and the error-rate alert share: server-side failures only.

Health and the alert read one selector (audit.selectors.error_rate) over one window; a client's
mistakes, however many, move neither.
"""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertState, Notification
from alerts.rules import error_rate as error_rate_rule
from alerts.services import evaluate_rules
from audit.models import AuditLog
from monitoring import checks
from monitoring.checks import reset_health_cache

pytestmark = pytest.mark.django_db

HEALTH = "/api/system/health"
LEAD = {"name": "Asha", "whatsapp": "+919847012345", "source": "GOOGLE"}

JSON = "application/json"
# What a careless or hostile script sends: each is the client's mistake, answered with a 4xx.
MALFORMED = [
    ("POST", "/api/leads", "{not json", JSON),
    ("POST", "/api/leads", "{}", JSON),
    ("POST", "/api/leads", json.dumps({**LEAD, "name": 123}), JSON),
    ("POST", "/api/leads", json.dumps(LEAD), "application/json; charset=rot13"),
    ("POST", "/api/leads", "[" * 500 + "]" * 500, JSON),
    ("GET", "/api/leads/999999", "", JSON),
    ("PUT", "/api/leads", "{}", JSON),
    ("GET", "/api/leads?limit=0", "", JSON),
    ("GET", "/api/system/audit-logs", "", JSON),
    (
        "POST",
        "/api/invoices/999999/pay-and-convert",
        json.dumps({"paidAmount": "1e3", "idempotencyKey": "k-1"}),
        JSON,
    ),
]


def _error_rate_check(client) -> dict:
    reset_health_cache()
    response = client.get(HEALTH)
    return {"http": response.status_code, **response.json()["checks"]["errorRate"]}


def test_a_burst_of_150_malformed_requests_moves_neither_error_rate_nor_health_nor_the_alert(
    marketing_client, founder_client, audit_rows, django_capture_on_commit_callbacks
):
    # 10 % exactly: health degraded (above 5 %), the alert just not firing (not above 10 %). One
    # more error row would fire the alert; the burst's 150 would push the rate far above both.
    audit_rows(INFO=90, ERROR=10)
    before = _error_rate_check(founder_client)
    assert (before["http"], before["status"], before["errorRate"]) == (200, "degraded", "10.0%")

    answers: Counter[int] = Counter()
    for i in range(150):
        method, path, body, content_type = MALFORMED[i % len(MALFORMED)]
        response = marketing_client.generic(method, path, body.encode(), content_type)
        answers[response.status_code] += 1

    assert all(400 <= code < 500 for code in answers), answers
    assert answers[429] > 0  # the token's rate limit answered part of the burst
    assert AuditLog.objects.count() == 100  # no row for any of them
    assert _error_rate_check(founder_client) == before
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_rules()
    assert AlertState.objects.get(fingerprint="error_rate").state == "normal"
    assert not Notification.objects.filter(rule="error_rate").exists()


def test_refused_logins_are_neither_errors_nor_events_of_the_error_rate(
    anon_client, founder_client, audit_rows, django_capture_on_commit_callbacks
):
    # A real problem: 6 % of the hour's events failed. Someone guessing passwords must not dilute
    # it until health looks healthy rather than degraded (6 of 160), nor add to it. (A high error
    # rate is degraded at worst: failing money operations have their own report.)
    audit_rows(INFO=94, ERROR=6)
    before = _error_rate_check(founder_client)
    assert (before["http"], before["status"]) == (200, "degraded")

    for i in range(60):
        anon_client.post(
            "/accounts/login/",
            {"email": f"guess{i}@example.com", "password": "wrong"},
            REMOTE_ADDR="203.0.113.9",
        )

    assert AuditLog.objects.filter(action="LOGIN_FAILED", severity="WARNING").count() == 60
    assert _error_rate_check(founder_client) == before
    assert error_rate_rule(timezone.now()).facts == {
        "errors": 6,
        "events": 100,
        "errorRate": "6.0%",
    }


def test_health_and_the_alert_rule_count_the_same_hour(audit_rows):
    now = timezone.now()
    audit_rows(ERROR=30, at=now - timedelta(hours=1))  # exactly one hour old: out of the window
    audit_rows(ERROR=1, at=now - timedelta(minutes=59, seconds=59))
    audit_rows(INFO=19, at=now)

    health = checks.check_error_rate(now=now)
    alert = error_rate_rule(now)

    assert (health.fields["errors"], health.fields["total"]) == (1, 20)
    assert (alert.facts["errors"], alert.facts["events"]) == (1, 20)
    assert (health.fields["errorRate"], alert.facts["errorRate"]) == ("5.0%", "5.0%")
