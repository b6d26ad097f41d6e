"""What monitors read besides the JSON body: the X-Health-Status header on every answer, and the
IETF health check format (application/health+json) chosen by Accept with its q-values."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import checks

pytestmark = pytest.mark.django_db

HEALTH = "/api/system/health"
MONEY = "/api/system/health/money"
HEALTH_JSON = "application/health+json"


def _make_degraded(settings):
    settings.FOUNDER_ALERT_EMAILS = []  # no alert channel: degraded, and nothing else


def _make_unhealthy(settings):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    checks.record_heartbeat(now=timezone.now() - timedelta(minutes=11))


STATES = {
    "healthy": (lambda settings: None, 200),
    "degraded": (_make_degraded, 200),
    "unhealthy": (_make_unhealthy, 503),
}


# --- the header -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("who", ["anon_client", "founder_client"])
def test_every_health_answer_says_its_status_in_x_health_status(request, settings, state, who):
    make, code = STATES[state]
    make(settings)
    client = request.getfixturevalue(who)

    response = client.get(HEALTH)

    assert response.status_code == code
    assert response["X-Health-Status"] == state
    assert response.json()["status"] == state


@pytest.mark.parametrize("state", list(STATES))
def test_head_carries_the_header_without_a_body(anon_client, settings, state):
    make, code = STATES[state]
    make(settings)

    response = anon_client.head(HEALTH)

    assert (response.status_code, response["X-Health-Status"]) == (code, state)
    assert response.content == b""


def test_the_header_is_there_in_the_health_json_format_too(founder_client, settings):
    _make_unhealthy(settings)
    response = founder_client.get(HEALTH, HTTP_ACCEPT=HEALTH_JSON)
    assert (response.status_code, response["X-Health-Status"]) == (503, "unhealthy")
    assert response.json()["status"] == "fail"


def test_a_post_is_refused_without_claiming_a_health_status(anon_client):
    response = anon_client.post(HEALTH)
    assert response.status_code == 405
    assert "X-Health-Status" not in response


# --- content negotiation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (HEALTH_JSON, HEALTH_JSON),
        ("application/health+json;q=1, */*", HEALTH_JSON),
        ("*/*, application/health+json", HEALTH_JSON),
        ("application/json, application/health+json;q=0.5", "application/json"),
        ("application/json;q=0.4, application/health+json;q=0.9", HEALTH_JSON),
        ("application/health+json;q=0, */*", "application/json"),
        ("application/*", "application/json"),
        # A monitor that asks for something else entirely still learns the status, no 406.
        ("text/html", "application/json"),
    ],
)
def test_accept_chooses_the_format_by_its_q_values(anon_client, accept, media_type):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = anon_client.get(HEALTH, **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == media_type
    assert "Accept" in [v.strip() for v in response["Vary"].split(",")]


def test_the_default_json_is_unchanged_for_the_summary(anon_client):
    assert sorted(anon_client.get(HEALTH).json()) == ["status", "timestamp"]


def test_health_json_for_anonymous_callers_is_the_status_alone(anon_client, settings):
    settings.HEALTH_SERVICE_ID = "planbeta-test"
    settings.APP_VERSION = "3f2c1ab"
    response = anon_client.get(HEALTH, HTTP_ACCEPT=HEALTH_JSON)
    assert response.json() == {
        "status": "pass",
        "serviceId": "planbeta-test",
        "description": "Plan Beta back office",
    }
    assert b"3f2c1ab" not in response.content


def test_health_json_for_the_health_token_has_every_check_measured(anon_client, settings):
    settings.HEALTH_CHECK_TOKEN = "uptime-secret-0123456789"
    settings.HEALTH_SERVICE_ID = "planbeta-test"
    settings.APP_VERSION = "3f2c1ab"
    settings.HEALTH_EXPECT_HEARTBEAT = True
    checks.record_heartbeat(now=timezone.now() - timedelta(seconds=30))

    response = anon_client.get(
        HEALTH, HTTP_ACCEPT=HEALTH_JSON, HTTP_AUTHORIZATION="Bearer uptime-secret-0123456789"
    )

    body = response.json()
    assert (response.status_code, response["Content-Type"]) == (200, HEALTH_JSON)
    assert (body["status"], body["serviceId"], body["releaseId"]) == (
        "pass",
        "planbeta-test",
        "3f2c1ab",
    )
    assert "output" not in body
    assert list(body["checks"]) == [
        "database:connection",
        "database:responseTime",
        "auditLog:errorRate",
        "moneyOperations:failures",
        "systemMetrics:rows",
        "recentActivity:count",
        "auditChain:lastVerification",
        "auditPartitions:defaultRows",
        "reconciliation:lastRun",
        "redis:responseTime",
        "celery:heartbeatAge",
        "alerting:channels",
    ]
    measured = {key: entries for key, entries in body["checks"].items()}
    times = {entry["time"] for entries in measured.values() for entry in entries}
    assert len(times) == 1  # one run of the checks
    [response_time] = measured["database:responseTime"]
    assert (response_time["status"], response_time["observedUnit"]) == ("pass", "ms")
    assert response_time["componentType"] == "datastore"
    assert 0 <= response_time["observedValue"] < 1000
    [age] = measured["celery:heartbeatAge"]
    assert (age["observedUnit"], 29 <= age["observedValue"] <= 40) == ("s", True)
    assert measured["auditLog:errorRate"] == [
        {
            "componentType": "component",
            "status": "pass",
            "time": age["time"],
            "observedValue": 0.0,
            "observedUnit": "percent",
        }
    ]
    assert [e["componentId"] for e in measured["systemMetrics:rows"]] == [
        "students",
        "leads",
        "invoices",
        "payments",
    ]
    assert {e["observedValue"] for e in measured["systemMetrics:rows"]} == {0}
    assert [(e["componentId"], e["observedValue"]) for e in measured["recentActivity:count"]] == [
        ("conversions", 0),
        ("payments", 0),
    ]
    [connection] = measured["database:connection"]
    assert "output" not in connection and "observedValue" not in connection


def test_health_json_says_what_failed_and_why(founder_client, settings):
    _make_unhealthy(settings)
    settings.FOUNDER_ALERT_EMAILS = []

    body = founder_client.get(HEALTH, HTTP_ACCEPT=HEALTH_JSON).json()

    assert body["status"] == "fail"
    assert body["output"] == "Not healthy: celery, alerting"
    [celery] = body["checks"]["celery:heartbeatAge"]
    assert celery["status"] == "fail"
    assert celery["output"].startswith("No worker heartbeat for too long")
    [alerting] = body["checks"]["alerting:channels"]
    assert (alerting["status"], alerting["output"][:27]) == ("warn", "No alert channel configured")


def test_a_check_the_format_does_not_know_is_listed_under_its_own_name(founder_client, monkeypatch):
    # Checks added later (by other work) appear before anyone maps them to a measurement.
    extra = [("laterCheck", lambda: checks.CheckResult("degraded", {"message": "Not verified"}))]
    monkeypatch.setattr(checks, "_OTHER_CHECKS", checks._OTHER_CHECKS + extra)

    body = founder_client.get(HEALTH, HTTP_ACCEPT=HEALTH_JSON).json()

    assert body["checks"]["laterCheck"] == [
        {
            "componentType": "component",
            "status": "warn",
            "time": body["checks"]["database:connection"][0]["time"],
            "output": "Not verified",
        }
    ]
    assert body["status"] == "warn"


def test_the_money_endpoint_answers_in_both_formats_with_the_header(founder_client):
    plain = founder_client.get(MONEY)
    ietf = founder_client.get(MONEY, HTTP_ACCEPT="application/health+json;q=1, */*")

    assert (plain.status_code, plain["X-Health-Status"]) == (200, "healthy")
    assert list(plain.json()["checks"]) == ["database", "moneyOperations"]
    assert (ietf["Content-Type"], ietf["X-Health-Status"]) == (HEALTH_JSON, "healthy")
    assert ietf.json()["description"].startswith("Plan Beta back office: money operations")
    assert list(ietf.json()["checks"]) == ["database:connection", "moneyOperations:failures"]
