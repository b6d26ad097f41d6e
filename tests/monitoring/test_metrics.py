"""GET /metrics: who may scrape, and that what it says is what the database holds."""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import AlertState, Notification
from audit.models import Action, AuditLog, Severity
from audit.services import AuditEntry, audit_record
from monitoring.checks import MONEY, collect_health, record_heartbeat
from monitoring.models import AuditCountMark
from monitoring.snapshots import ended_before
from payments.models import Payment, Student
from tests.dbproxy import routed_through

TOKEN = "metrics-test-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client | None = None, token: str = TOKEN) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def audit_counts_in_db() -> dict[tuple, float]:
    rows = AuditLog.objects.values_list("action", "severity").annotate(n=Count("*")).order_by()
    return {(("action", a), ("severity", s)): float(n) for a, s, n in rows}


def post(client: Client, path: str, body: dict, **extra):
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


# --- who may scrape ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "teacher", "marketing", "founder"])
def test_a_session_or_api_token_of_any_role_without_the_metrics_token_gets_401(
    who, request, client
):
    if who != "anonymous":
        user = request.getfixturevalue(who)
        client.force_login(user)
        api_client = request.getfixturevalue(f"{who}_client")
        assert api_client.get("/metrics").status_code == 401
    rows = AuditLog.objects.count()

    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"planbeta_" not in response.content
    assert AuditLog.objects.count() == rows


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        f"Token {TOKEN}",
    ],
)
def test_a_wrong_token_or_scheme_gets_401(header):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert b"planbeta_" not in response.content


@pytest.mark.django_db
def test_without_a_metrics_token_configured_every_scrape_is_refused(settings):
    settings.METRICS_TOKEN = ""

    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 401


@pytest.mark.django_db
def test_the_right_token_gets_the_metrics_and_the_scheme_is_case_insensitive():
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert b"planbeta_audit_events_total" in response.content


@pytest.mark.django_db
def test_a_post_to_metrics_is_refused_with_405():
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 405


# --- what it says -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.urls("tests.audit.urls_failing")
def test_after_a_scripted_day_the_metrics_hold_what_the_database_holds(
    marketing, marketing_client, settings
):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    client = Client(
        raise_request_exception=False,
        HTTP_AUTHORIZATION=marketing_client.defaults["HTTP_AUTHORIZATION"],
    )
    invoices = {}
    for currency, amount in (("EUR", "134.00"), ("INR", "12000.00")):
        lead = post(
            client,
            "/api/leads",
            {
                "name": f"Lead {currency}",
                "whatsapp": f"+91984701{len(invoices):04d}",
                "source": "ORGANIC",
            },
        )
        assert lead.status_code == 201, lead.content
        invoice = post(
            client,
            f"/api/leads/{lead.json()['id']}/invoice",
            {"currency": currency, "items": [{"description": "A1 course", "amount": amount}]},
        )
        assert invoice.status_code == 201, invoice.content
        invoices[currency] = invoice.json()["id"]
    paid = [("EUR", "100.00"), ("INR", "5000.50")]
    for currency, amount in paid:
        converted = post(
            client,
            f"/api/invoices/{invoices[currency]}/pay-and-convert",
            {"paidAmount": amount, "idempotencyKey": f"k-{uuid.uuid4()}"},
        )
        assert converted.status_code == 201, converted.content
    later = post(
        client,
        f"/api/invoices/{invoices['EUR']}/payments",
        {"amount": "34.00", "idempotencyKey": f"k-{uuid.uuid4()}"},
    )
    assert later.status_code == 201, later.content
    again = post(
        client,
        f"/api/invoices/{invoices['INR']}/pay-and-convert",
        {"paidAmount": "1.00", "idempotencyKey": f"k-{uuid.uuid4()}"},
    )
    assert again.status_code == 409  # already converted: a WARNING row
    assert post(client, "/api/test/explode", {}).status_code == 500  # an API_ERROR row
    Notification.objects.create(
        dedup_key="d1", fingerprint="error_rate", rule="error_rate", kind="FIRING",
        channel="email", title="t", body="b", created_at=timezone.now() - timedelta(minutes=7),
    )  # fmt: skip
    Notification.objects.create(
        dedup_key="d2", fingerprint="error_rate", rule="error_rate", kind="FIRING",
        channel="slack", title="t", body="b", status="SENT",
    )  # fmt: skip
    AlertState.objects.create(fingerprint="error_rate", rule="error_rate", state="firing")
    AlertState.objects.create(fingerprint="no_activity", rule="no_activity", state="normal")
    record_heartbeat(now=timezone.now() - timedelta(seconds=42))

    with time_machine.travel(timezone.now(), tick=False):
        metrics = scrape()
        health, _ = collect_health(detailed=True)
        money, _ = collect_health(detailed=True, scope=MONEY)

    assert metrics["planbeta_audit_events_total"] == audit_counts_in_db()
    assert (
        metrics["planbeta_audit_events_total"][(("action", "API_ERROR"), ("severity", "ERROR"))]
        == 1
    )
    assert metrics["planbeta_payments_total"] == {
        (("currency", "EUR"),): 2.0,
        (("currency", "INR"),): 1.0,
    }
    assert metrics["planbeta_payment_amount_total"] == {
        (("currency", "EUR"),): 134.0,
        (("currency", "INR"),): 5000.5,
    }
    assert Payment.objects.count() == 3
    assert metrics["planbeta_conversions_total"] == {
        (("currency", "EUR"),): 1.0,
        (("currency", "INR"),): 1.0,
    }
    assert Student.objects.count() == 2
    notifications = metrics["planbeta_notifications"]
    assert notifications[(("state", "PENDING"),)] == 1
    assert notifications[(("state", "SENT"),)] == 1
    assert sum(notifications.values()) == 2
    assert metrics["planbeta_notification_oldest_pending_age_seconds"][()] == pytest.approx(
        420, abs=1
    )
    assert metrics["planbeta_alerts"][(("rule", "error_rate"), ("state", "firing"))] == 1
    assert metrics["planbeta_alerts"][(("rule", "no_activity"), ("state", "firing"))] == 0
    assert metrics["planbeta_heartbeat_age_seconds"][()] == pytest.approx(42, abs=1)
    total = AuditLog.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1)).count()
    errors = AuditLog.objects.filter(severity__in=[Severity.ERROR, Severity.CRITICAL]).count()
    assert metrics["planbeta_error_rate_events"][()] == total
    assert metrics["planbeta_error_rate_ratio"][()] == pytest.approx(errors / total)
    status = metrics["planbeta_health_status"]
    for check, current in [("overall", health["status"]), ("money", money["status"])] + [
        (name, body["status"]) for name, body in health["checks"].items()
    ]:
        assert {
            s: status[(("check", check), ("status", s))]
            for s in ("healthy", "degraded", "unhealthy")
        } == {s: (1.0 if s == current else 0.0) for s in ("healthy", "degraded", "unhealthy")}
    durations = metrics["planbeta_health_check_duration_seconds"]
    assert {labels[0][1] for labels in durations} == set(health["checks"])
    assert all(0 <= seconds < 5 for seconds in durations.values())
    assert metrics["planbeta_metrics_database_up"][()] == 1


@pytest.mark.django_db
def test_no_heartbeat_recorded_is_an_infinite_age_and_none_expected_is_no_series(settings):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    assert math.isinf(scrape()["planbeta_heartbeat_age_seconds"][()])

    settings.HEALTH_EXPECT_HEARTBEAT = False
    assert "planbeta_heartbeat_age_seconds" not in scrape()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_the_database_away_a_scrape_still_says_what_is_wrong_and_writes_nothing(
    db_proxy, settings
):
    _write(1)
    with routed_through(
        db_proxy,
        ("default",),
        call_deadline=2,
        statement_timeout=1,
        lock_timeout=1,
        idle_in_transaction_timeout=2,
    ):
        db_proxy.drop(refuse_new=True)
        metrics = scrape()

    assert metrics["planbeta_metrics_database_up"][()] == 0
    assert "planbeta_audit_events_total" not in metrics
    assert "planbeta_payments_total" not in metrics
    assert metrics["planbeta_health_status"][(("check", "database"), ("status", "unhealthy"))] == 1
    assert metrics["planbeta_health_status"][(("check", "overall"), ("status", "unhealthy"))] == 1
    assert metrics["planbeta_health_status"][(("check", "money"), ("status", "unhealthy"))] == 1
    assert AuditLog.objects.count() == 1
    spool = Path(settings.AUDIT_SPOOL_DIR)
    assert not spool.exists() or list(spool.iterdir()) == []


# --- the audit counts: exact and monotonic across roll-ups ------------------------------------


def _wait_for_older_transactions_to_end() -> None:
    # On PostgreSQL the mark moves only once every transaction older than the noted xmax has
    # ended, in the whole cluster: other databases' transactions (another suite on the same
    # server) can hold it for a moment. Real time, whatever the frozen clock says.
    mark = AuditCountMark.objects.filter(pk=1).first()
    if connection.vendor != "postgresql" or mark is None or mark.candidate_xmax is None:
        return
    for _ in range(1200):
        if ended_before(mark.candidate_xmax):
            return
        time.sleep(0.05)
    pytest.fail("a transaction older than the candidate mark ran for a minute")


def _write(n: int, action: str = Action.LEAD_CREATED, severity: str = Severity.INFO) -> None:
    for _ in range(n):
        audit_record(AuditEntry(action, description="metrics test", severity=severity))


@pytest.mark.django_db(transaction=True)
def test_audit_counts_stay_exact_and_never_drop_while_the_mark_moves_up(settings):
    settings.MONITORING_AUDIT_ROLLUP_SECONDS = 3600
    settings.MONITORING_AUDIT_SETTLE_SECONDS = 60
    seen: list[dict] = []
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _hour in range(4):
            _write(3)
            _write(1, Action.API_ERROR, Severity.ERROR)
            seen.append(scrape()["planbeta_audit_events_total"])
            assert seen[-1] == audit_counts_in_db()
            clock.shift(timedelta(seconds=90))  # the candidate settles
            _write(2, Action.LOGIN)
            seen.append(scrape()["planbeta_audit_events_total"])
            assert seen[-1] == audit_counts_in_db()
            clock.shift(timedelta(hours=1))
            _wait_for_older_transactions_to_end()
    mark = AuditCountMark.objects.get()
    # Rolled up three times, the last time to the rows of the second hour.
    assert mark.counted_to_id == AuditLog.objects.order_by("id")[15].id
    for earlier, later in itertools.pairwise(seen):
        assert all(later.get(labels, 0) >= n for labels, n in earlier.items())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_row_still_uncommitted_below_the_candidate_holds_the_mark_until_it_commits(settings):
    settings.MONITORING_AUDIT_ROLLUP_SECONDS = 0
    settings.MONITORING_AUDIT_SETTLE_SECONDS = 0
    with transaction.atomic(using="audit"):
        # Draws its id first and commits last, as a long transaction does.
        slow = AuditLog.objects.using("audit").create(action="LEAD_UPDATED", description="slow")
        _write(1)
        newest = AuditLog.objects.latest("id").id
        for _ in range(4):  # draw the candidate above the open row, note xmax, try to advance
            assert scrape()["planbeta_audit_events_total"] == audit_counts_in_db()
        mark = AuditCountMark.objects.get()
        assert (mark.candidate_id, mark.counted_to_id) == (newest, 0)
        assert slow.id < newest
    _wait_for_older_transactions_to_end()

    assert scrape()["planbeta_audit_events_total"] == audit_counts_in_db()
    assert audit_counts_in_db()[(("action", "LEAD_UPDATED"), ("severity", "INFO"))] == 1
    assert AuditCountMark.objects.get().counted_to_id == newest


@pytest.mark.django_db
def test_the_audit_counts_take_a_few_short_queries_per_scrape_once_the_mark_has_settled(
    django_assert_num_queries,
):
    from monitoring.metrics import audit_event_counts

    _write(2)
    audit_event_counts()  # draws the candidate

    # The mark (is a step due?), the mark again; on PostgreSQL the late rows above it with the
    # database's clock and the mark row's time (audit.timeline: where the rows above it are);
    # the counts.
    with django_assert_num_queries(5 if connection.vendor == "postgresql" else 3):
        counts = audit_event_counts()

    assert counts == {("LEAD_CREATED", "INFO"): 2}


# --- request latency --------------------------------------------------------------------------


@pytest.mark.django_db
def test_request_latency_is_labelled_by_the_route_pattern_never_the_raw_path(founder_client):
    before = scrape()["planbeta_http_request_duration_seconds_count"]
    founder_client.get("/api/leads/1")
    founder_client.get("/api/leads/2")
    founder_client.get("/no/such/page/4711")

    after = scrape()["planbeta_http_request_duration_seconds_count"]

    def grew(route: str, status: str) -> float:
        labels = (("method", "GET"), ("route", route), ("status", status))
        return after.get(labels, 0) - before.get(labels, 0)

    assert grew("api/leads/<int:lead_id>", "404") == 2
    assert grew("unmatched", "404") == 1
    assert not [labels for labels in after if "4711" in str(labels) or "/1" in str(labels)]
