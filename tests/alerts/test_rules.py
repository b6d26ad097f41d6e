"""Rules 2-6: firing, repeat suppression, resolution; state in the database."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from alerts.models import AlertState, Notification
from alerts.services import evaluate_rules
from audit.models import AuditLog
from monitoring.checks import HEARTBEAT_KEY, check_database_performance, record_heartbeat

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 15:30 in Kolkata, after the digest hour


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks, time_machine):
    def evaluate(at: datetime) -> list[tuple[str, str, str]]:
        time_machine.move_to(at, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            ids = evaluate_rules()
        return sorted(
            Notification.objects.filter(pk__in=ids).values_list("rule", "kind", "channel")
        )

    return evaluate


@pytest.fixture
def no_digest(settings):
    settings.ALERT_DIGEST_HOUR = 24  # never due: these tests look at one rule at a time


def audit_rows(n: int, *, at: datetime, severity: str = "INFO", action: str = "LEAD_UPDATED"):
    AuditLog.objects.bulk_create(
        AuditLog(action=action, severity=severity, description="row", created_at=at)
        for _ in range(n)
    )


@pytest.mark.django_db
def test_error_rate_above_ten_percent_fires_once_repeats_after_four_hours_and_resolves(
    channels, evaluate, no_digest
):
    audit_rows(18, at=T0 - timedelta(minutes=30))
    audit_rows(3, at=T0 - timedelta(minutes=10), severity="ERROR", action="API_ERROR")

    assert evaluate(T0) == [("error_rate", "FIRING", "email")]
    [mail] = channels["mail"].messages
    assert "Error rate 14.3% in the last hour (3 of 21 events)" in mail["data"]
    assert evaluate(T0 + timedelta(minutes=1)) == []
    audit_rows(3, at=T0 + timedelta(hours=3, minutes=50), severity="ERROR")
    audit_rows(20, at=T0 + timedelta(hours=3, minutes=50))
    assert evaluate(T0 + timedelta(hours=3, minutes=59)) == []
    state = AlertState.objects.get(fingerprint="error_rate")
    assert (state.state, state.firing_since) == ("firing", T0)

    assert evaluate(T0 + timedelta(hours=4)) == [("error_rate", "REPEAT", "email")]

    audit_rows(100, at=T0 + timedelta(hours=4, minutes=30))
    assert evaluate(T0 + timedelta(hours=4, minutes=31)) == []  # clear, not yet for 5 minutes
    assert evaluate(T0 + timedelta(hours=4, minutes=36)) == [("error_rate", "RESOLVED", "email")]
    resolved = Notification.objects.get(kind="RESOLVED")
    assert resolved.title == "Resolved: Error rate 13.0% in the last hour (3 of 23 events)"
    assert resolved.facts["firingFor"] == "4 h 31 min"
    assert AlertState.objects.get(fingerprint="error_rate").state == "resolved"
    assert evaluate(T0 + timedelta(hours=5)) == []
    assert len(channels["mail"].messages) == 3
    assert channels["webhooks"].requests == []  # rule 2 is an e-mail rule


@pytest.mark.django_db
def test_a_flapping_condition_is_one_alert_until_it_stays_clear_for_five_minutes(
    channels, evaluate, no_digest, settings
):
    # Health flaps between unhealthy (no heartbeat for over ten minutes) and degraded (a stale
    # one); the heartbeat rule fires once and stays firing throughout.
    settings.HEALTH_EXPECT_HEARTBEAT = True
    readings = []
    for minute, heartbeat_age in enumerate([601, 300, 601, 300] + [300] * 5):
        at = T0 + timedelta(minutes=minute)
        record_heartbeat(now=at - timedelta(seconds=heartbeat_age))
        readings.append(evaluate(at))

    kinds = [{(rule, kind) for rule, kind, _ in fired} for fired in readings]
    assert kinds == [
        {("health_unhealthy", "FIRING"), ("heartbeat_stale", "FIRING")},
        *[set()] * 7,
        {("health_unhealthy", "RESOLVED")},
    ]
    resolved = Notification.objects.filter(kind="RESOLVED", rule="health_unhealthy").first()
    assert resolved.facts["firingFor"] == "3 min"


@pytest.mark.django_db
def test_error_rate_needs_a_minimum_number_of_events(channels, evaluate, no_digest):
    audit_rows(10, at=T0 - timedelta(minutes=5), severity="ERROR")
    audit_rows(9, at=T0 - timedelta(minutes=5))

    assert evaluate(T0) == []
    assert AlertState.objects.get(fingerprint="error_rate").state == "normal"


@pytest.mark.django_db
def test_no_conversions_and_no_payments_in_48_hours_fires_and_a_payment_resolves_it(
    channels, evaluate, no_digest
):
    audit_rows(1, at=T0 - timedelta(days=5), action="PAYMENT_RECEIVED")
    audit_rows(
        1, at=T0 - timedelta(hours=47), action="LEAD_TO_STUDENT_CONVERSION", severity="ERROR"
    )

    assert evaluate(T0) == [("no_activity", "FIRING", "email")]
    assert Notification.objects.get().facts == {
        "conversions": 0,
        "payments": 0,
        "period": "last 48 hours",
    }
    assert evaluate(T0 + timedelta(hours=23)) == []
    assert evaluate(T0 + timedelta(hours=24)) == [("no_activity", "REPEAT", "email")]

    audit_rows(1, at=T0 + timedelta(hours=25), action="PAYMENT_RECEIVED")
    assert evaluate(T0 + timedelta(hours=25, minutes=1)) == []
    assert evaluate(T0 + timedelta(hours=25, minutes=6)) == [("no_activity", "RESOLVED", "email")]


@pytest.mark.django_db
def test_a_system_younger_than_48_hours_is_not_called_quiet(channels, evaluate, no_digest):
    audit_rows(5, at=T0 - timedelta(hours=40))

    assert evaluate(T0) == []
    assert not AlertState.objects.filter(fingerprint="no_activity").exists()


@pytest.mark.django_db
def test_unhealthy_health_alerts_every_channel_and_recovery_is_announced(
    channels, evaluate, no_digest, settings
):
    # A heartbeat older than ten minutes makes health unhealthy (and fires the beat rule with
    # it). The e-mail-only error-rate rule fires at the same time and is inhibited by it:
    # recorded, not sent. (A high error rate alone no longer makes health unhealthy.)
    settings.HEALTH_EXPECT_HEARTBEAT = True
    record_heartbeat(now=T0 - timedelta(seconds=601))
    audit_rows(16, at=T0 - timedelta(minutes=10))
    audit_rows(4, at=T0 - timedelta(minutes=10), severity="ERROR", action="API_ERROR")
    every_channel = ["discord", "email", "json", "slack"]
    assert evaluate(T0) == [
        ("error_rate", "FIRING", "email"),
        *[("health_unhealthy", "FIRING", channel) for channel in every_channel],
        *[("heartbeat_stale", "FIRING", channel) for channel in every_channel],
    ]
    texts = [hit["text"] for hit in channels["webhooks"].received("/slack")]
    assert "Health is unhealthy (HTTP 503)" in texts
    assert Notification.objects.get(rule="health_unhealthy", channel="email").facts == {
        "status": "unhealthy",
        "httpStatus": 503,
        "checks": "celery, errorRate",
    }
    assert Notification.objects.get(rule="error_rate").status == "INHIBITED"
    assert len(channels["mail"].messages) == 2  # health and heartbeat, not the error rate

    audit_rows(100, at=T0 + timedelta(minutes=2))
    record_heartbeat(now=T0 + timedelta(minutes=2))
    assert evaluate(T0 + timedelta(minutes=3)) == []
    record_heartbeat(now=T0 + timedelta(minutes=7))
    # All resolve: nobody heard of the error rate, so nobody hears that it is over.
    assert evaluate(T0 + timedelta(minutes=8)) == [
        *[("health_unhealthy", "RESOLVED", channel) for channel in every_channel],
        *[("heartbeat_stale", "RESOLVED", channel) for channel in every_channel],
    ]
    texts = [hit["text"] for hit in channels["webhooks"].received("/slack")]
    assert "Resolved: Health is unhealthy (HTTP 503)" in texts
    assert {hit["status"] for hit in channels["webhooks"].received("/hook")[2:]} == {"resolved"}


@pytest.mark.django_db
def test_stale_beat_heartbeat_fires_and_a_fresh_one_resolves(channels, evaluate, no_digest):
    record_heartbeat(now=T0 - timedelta(seconds=181))
    fired = evaluate(T0)
    assert ("heartbeat_stale", "FIRING", "slack") in fired
    assert len(fired) == 4  # every channel, and nothing else: tasks run inline, health is healthy

    cache.delete(HEARTBEAT_KEY)  # no reading is not judged either way
    assert evaluate(T0 + timedelta(minutes=1)) == []

    record_heartbeat(now=T0 + timedelta(minutes=2) - timedelta(seconds=15))
    assert evaluate(T0 + timedelta(minutes=2)) == []
    record_heartbeat(now=T0 + timedelta(minutes=7))
    assert ("heartbeat_stale", "RESOLVED", "email") in evaluate(T0 + timedelta(minutes=7))


@pytest.mark.django_db
def test_a_healthy_system_evaluates_every_rule_and_sends_nothing(channels, evaluate, no_digest):
    record_heartbeat(now=T0 - timedelta(seconds=20))

    assert evaluate(T0) == []
    assert sorted(AlertState.objects.values_list("fingerprint", "state")) == [
        ("critical_event", "normal"),
        ("error_rate", "normal"),
        ("health_unhealthy", "normal"),
        ("heartbeat_stale", "normal"),
        ("slow_database", "normal"),
    ]
    assert channels["mail"].messages == []
    assert channels["webhooks"].requests == []


@pytest.mark.django_db
def test_daily_digest_goes_out_once_a_day_from_the_configured_local_hour(
    channels, evaluate, settings
):
    settings.ALERT_DIGEST_HOUR = 8
    before = datetime(2026, 11, 20, 2, 29, tzinfo=UTC)  # 07:59 in Kolkata
    audit_rows(2, at=before - timedelta(hours=2), severity="ERROR", action="EMAIL_FAILED")
    audit_rows(1, at=before - timedelta(hours=30), severity="ERROR", action="API_ERROR")
    audit_rows(1, at=before - timedelta(hours=1), action="PAYMENT_RECEIVED")

    assert evaluate(before) == []
    assert evaluate(before + timedelta(minutes=1)) == [("daily_digest", "DIGEST", "email")]
    digest = Notification.objects.get(kind="DIGEST")
    assert digest.title == "Daily digest 2026-11-20"
    assert digest.facts == {
        "date": "2026-11-20",
        "openAlerts": 0,
        "failedDeliveries": 0,
        "ERROR EMAIL_FAILED": 2,
    }
    assert evaluate(before + timedelta(hours=12)) == []
    assert evaluate(before + timedelta(days=1, minutes=1)) == [("daily_digest", "DIGEST", "email")]
    assert len(channels["mail"].messages) == 2
    assert channels["webhooks"].requests == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_slow_probe_measured_by_the_monitoring_app_fires_and_resolves(
    channels, evaluate, no_digest, settings
):
    # The probe sleeps longer than the threshold, so it is always slow; the cancel bound is far
    # above it, so a busy machine never turns the measurement into a cancellation.
    settings.ALERT_SLOW_QUERY_MS = 300
    settings.ALERT_SLOW_QUERY_CANCEL_MS = 5000
    settings.HEALTH_DB_PROBE_SQL = "SELECT pg_sleep(0.35)"

    assert evaluate(T0) == [("slow_database", "FIRING", "email")]
    title = Notification.objects.get().title
    measured = re.fullmatch(r"Database query time (\d+) ms \(threshold 300 ms\)", title)
    assert measured is not None, title
    assert int(measured[1]) >= 350

    settings.HEALTH_DB_PROBE_SQL = "SELECT 1"
    assert evaluate(T0 + timedelta(minutes=1)) == []
    assert evaluate(T0 + timedelta(minutes=6)) == [("slow_database", "RESOLVED", "email")]


@pytest.mark.postgres
@pytest.mark.django_db
def test_probe_cancelled_at_the_cancel_bound_counts_as_a_slow_database(
    channels, evaluate, no_digest, settings
):
    settings.HEALTH_DB_PROBE_SQL = "SELECT pg_sleep(30)"
    settings.ALERT_SLOW_QUERY_MS = 100
    settings.ALERT_SLOW_QUERY_CANCEL_MS = 150

    assert evaluate(T0) == [("slow_database", "FIRING", "email")]
    notification = Notification.objects.get()
    assert notification.title == "Database probe query failed or timed out"
    assert notification.body == "Probe query cancelled by the statement timeout"


def test_the_rule_waits_one_and_a_half_thresholds_for_its_probe_by_default():
    from planbeta import settings as production

    assert production.ALERT_SLOW_QUERY_MS == 2000
    assert production.ALERT_SLOW_QUERY_CANCEL_MS == 3000
    assert production.HEALTH_DB_TIMEOUT_MS == 1500  # the health check gives up sooner


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_probe_slower_than_the_health_timeout_but_under_the_alert_threshold_does_not_fire(
    channels, evaluate, no_digest, settings
):
    # 100 ms is always beyond the health check's 20 ms, and always far below the rule's 5 s.
    settings.HEALTH_DB_TIMEOUT_MS = 20
    settings.ALERT_SLOW_QUERY_MS = 5000
    settings.ALERT_SLOW_QUERY_CANCEL_MS = 10_000
    settings.HEALTH_DB_PROBE_SQL = "SELECT pg_sleep(0.1)"
    health_probe = check_database_performance()
    assert health_probe.fields["message"] == "Probe query cancelled by the statement timeout"

    assert evaluate(T0) == []
    assert Notification.objects.count() == 0
    assert AlertState.objects.get(fingerprint="slow_database").state == "normal"


@pytest.mark.django_db
def test_the_daily_digest_carries_the_latest_audit_checkpoint_to_email_and_webhooks(
    channels, evaluate, settings
):
    from audit import chain

    settings.ALERT_DIGEST_HOUR = 8
    audit_rows(2, at=T0 - timedelta(hours=1), action="PAYMENT_RECEIVED")
    checkpoint = chain.write_checkpoint()
    witness = checkpoint.metadata["witness"]

    assert evaluate(T0) == [
        ("daily_digest", "DIGEST", "discord"),
        ("daily_digest", "DIGEST", "email"),
        ("daily_digest", "DIGEST", "json"),
        ("daily_digest", "DIGEST", "slack"),
    ]
    command = f"python manage.py audit_verify --checkpoint {witness}"
    [mail] = channels["mail"].messages
    assert command in mail["data"]
    digest = Notification.objects.get(kind="DIGEST", channel="email")
    assert digest.facts["auditCheckpoint"] == witness
    hooks = Notification.objects.filter(kind="DIGEST").exclude(channel="email")
    assert {n.title for n in hooks} == {"Audit checkpoint 2026-11-20"}
    assert all(command in n.body and n.facts == {"auditCheckpoint": witness} for n in hooks)
    assert len(channels["webhooks"].requests) == 3
