"""Silences (one rule, optionally one fingerprint, until a time) and inhibition (health first)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from alerts.models import AlertState, Notification, Silence
from alerts.services import evaluate_rules
from alerts.suppression import silence_create, suppression_for
from audit.models import AuditLog
from monitoring.checks import record_heartbeat

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 15:30 in Kolkata


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks, time_machine, settings):
    settings.ALERT_DIGEST_HOUR = 24

    def evaluate(at: datetime) -> list[tuple[str, str, str, str]]:
        time_machine.move_to(at, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            ids = evaluate_rules()
        return sorted(
            Notification.objects.filter(pk__in=ids).values_list("rule", "kind", "channel", "status")
        )

    return evaluate


def error_rate_fires(at: datetime) -> None:
    """3 errors in 21 events: above the rule's 10 %, below the 15 % that makes health unhealthy."""
    AuditLog.objects.bulk_create(
        [AuditLog(action="LEAD_UPDATED", description="x", created_at=at)] * 18
        + [AuditLog(action="API_ERROR", severity="ERROR", description="x", created_at=at)] * 3
    )


def sent_subjects(mail) -> list[str]:
    return [
        line.removeprefix("Subject: ")
        for message in mail.messages
        for line in message["data"].splitlines()
        if line.startswith("Subject: ")
    ]


@pytest.mark.django_db
def test_a_silenced_rule_changes_state_and_records_its_notifications_without_sending_them(
    channels, evaluate, founder, time_machine
):
    time_machine.move_to(T0, tick=False)
    silence_create(
        actor=founder, rule="error_rate", ends_at=T0 + timedelta(hours=1), reason="load test"
    )
    error_rate_fires(T0 - timedelta(minutes=5))
    error_rate_fires(T0 + timedelta(minutes=30))  # and still does an hour later
    record_heartbeat(now=T0 - timedelta(seconds=200))  # rule 5b fires too, and is not silenced

    fired = evaluate(T0)

    assert fired == [
        ("error_rate", "FIRING", "email", "SILENCED"),
        ("heartbeat_stale", "FIRING", "discord", "SENT"),
        ("heartbeat_stale", "FIRING", "email", "SENT"),
        ("heartbeat_stale", "FIRING", "json", "SENT"),
        ("heartbeat_stale", "FIRING", "slack", "SENT"),
    ]
    assert AlertState.objects.get(rule="error_rate").state == "firing"
    assert sent_subjects(channels["mail"]) == [
        "[Plan Beta CRITICAL] Beat heartbeat is 200 s old (limit 180 s)"
    ]
    # No repeat every minute while silenced; once the silence ends, the founders hear of it.
    record_heartbeat(now=T0 + timedelta(minutes=59))
    assert evaluate(T0 + timedelta(minutes=59)) == []
    record_heartbeat(now=T0 + timedelta(hours=1))
    assert evaluate(T0 + timedelta(hours=1)) == [("error_rate", "FIRING", "email", "SENT")]
    announced = Notification.objects.get(rule="error_rate", status="SENT")
    assert announced.facts["firingFor"] == "1 h 0 min"
    assert announced.ack_version == AlertState.objects.get(rule="error_rate").version


@pytest.mark.django_db
def test_a_silence_scoped_to_a_fingerprint_silences_that_alert_only(founder, time_machine):
    now = T0
    time_machine.move_to(now, tick=False)
    silence_create(
        actor=founder,
        rule="critical_event",
        fingerprint="critical_event:invoice",
        ends_at=now + timedelta(hours=1),
        reason="known issue",
    )
    silence_create(
        actor=founder,
        rule="slow_database",
        starts_at=now + timedelta(minutes=10),
        ends_at=now + timedelta(hours=1),
        reason="later",
    )

    def status(rule, fingerprint, at=now):
        return suppression_for(rule=rule, fingerprint=fingerprint, now=at)

    assert status("critical_event", "critical_event:invoice") == "SILENCED"
    assert status("critical_event", "critical_event") is None
    assert status("error_rate", "critical_event:invoice") is None
    assert status("slow_database", "slow_database") is None  # not yet
    assert status("slow_database", "slow_database", now + timedelta(minutes=10)) == "SILENCED"
    assert status("slow_database", "slow_database", now + timedelta(hours=1)) is None  # over


@pytest.mark.django_db
def test_while_health_is_unhealthy_error_rate_and_slow_database_do_not_page_on_top(
    channels, evaluate, settings
):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    settings.HEALTH_DB_PROBE_SQL = "SELECT * FROM no_such_table"  # the slow-database rule fires
    error_rate_fires(T0 - timedelta(minutes=5))
    record_heartbeat(now=T0 - timedelta(seconds=601))  # dead beat: health is unhealthy

    fired = evaluate(T0)

    assert fired == [
        ("error_rate", "FIRING", "email", "INHIBITED"),
        ("health_unhealthy", "FIRING", "discord", "SENT"),
        ("health_unhealthy", "FIRING", "email", "SENT"),
        ("health_unhealthy", "FIRING", "json", "SENT"),
        ("health_unhealthy", "FIRING", "slack", "SENT"),
        ("heartbeat_stale", "FIRING", "discord", "SENT"),
        ("heartbeat_stale", "FIRING", "email", "SENT"),
        ("heartbeat_stale", "FIRING", "json", "SENT"),
        ("heartbeat_stale", "FIRING", "slack", "SENT"),
        ("slow_database", "FIRING", "email", "INHIBITED"),
    ]
    assert len(channels["mail"].messages) == 2  # health and the heartbeat; the others held back

    # Beat is back. Health stays firing until it has been clear for five minutes, and inhibits
    # until then; when it resolves, the alerts it held back are still firing and are sent.
    for minute in range(1, 7):
        record_heartbeat(now=T0 + timedelta(minutes=minute))
        fired = evaluate(T0 + timedelta(minutes=minute))
        if minute < 6:
            assert fired == [], minute
    assert fired == [
        ("error_rate", "FIRING", "email", "SENT"),
        ("health_unhealthy", "RESOLVED", "discord", "SENT"),
        ("health_unhealthy", "RESOLVED", "email", "SENT"),
        ("health_unhealthy", "RESOLVED", "json", "SENT"),
        ("health_unhealthy", "RESOLVED", "slack", "SENT"),
        ("heartbeat_stale", "RESOLVED", "discord", "SENT"),
        ("heartbeat_stale", "RESOLVED", "email", "SENT"),
        ("heartbeat_stale", "RESOLVED", "json", "SENT"),
        ("heartbeat_stale", "RESOLVED", "slack", "SENT"),
        ("slow_database", "FIRING", "email", "SENT"),
    ]
    assert sorted(s for s in sent_subjects(channels["mail"]) if "ERROR" in s) == [
        "[Plan Beta ERROR] Database probe query failed or timed out",
        "[Plan Beta ERROR] Error rate 14.3% in the last hour (3 of 21 events)",
    ]


@pytest.mark.django_db
def test_an_alert_announced_before_health_failed_is_not_repeated_under_it_but_resolves_aloud(
    channels, evaluate, settings
):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    settings.ALERT_REPEAT_HOURS = 1
    error_rate_fires(T0 - timedelta(minutes=5))
    record_heartbeat(now=T0)
    assert evaluate(T0) == [("error_rate", "FIRING", "email", "SENT")]

    record_heartbeat(now=T0 - timedelta(minutes=10))  # beat dies: health becomes unhealthy
    error_rate_fires(T0 + timedelta(minutes=55))
    fired = evaluate(T0 + timedelta(hours=1))
    assert ("error_rate", "REPEAT", "email", "INHIBITED") in fired
    assert ("health_unhealthy", "FIRING", "slack", "SENT") in fired

    # The error rate clears while health is still unhealthy: that it is over is not a page.
    AuditLog.objects.bulk_create(
        [AuditLog(action="LEAD_UPDATED", description="x", created_at=T0 + timedelta(hours=1))] * 200
    )
    evaluate(T0 + timedelta(hours=1, minutes=1))
    fired = evaluate(T0 + timedelta(hours=1, minutes=6))
    assert ("error_rate", "RESOLVED", "email", "SENT") in fired
    assert AlertState.objects.get(rule="health_unhealthy").state == "firing"


@pytest.mark.django_db
def test_founder_silences_a_rule_from_the_admin_and_it_is_audited(founder, time_machine):
    time_machine.move_to(T0, tick=False)
    client = Client()
    client.force_login(founder)

    response = client.post(
        "/admin/alerts/silence/add/",
        {
            "rule": "slow_database",
            "fingerprint": "",
            "starts_at_0": "2026-11-20",
            "starts_at_1": "15:30:00",
            "ends_at_0": "2026-11-20",
            "ends_at_1": "18:30:00",
            "reason": "index rebuild",
        },
    )

    assert response.status_code == 302
    silence = Silence.objects.get()
    assert (silence.rule, silence.ends_at, silence.created_by) == (
        "slow_database",
        T0 + timedelta(hours=3),
        founder,
    )
    audit = AuditLog.objects.get(action="ALERT_SILENCED")
    assert (audit.user_email, audit.entity_type, audit.metadata["reason"]) == (
        "founder@example.com",
        "Silence",
        "index rebuild",
    )

    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    client.post("/admin/alerts/silence/", {"action": "end_now", "_selected_action": [silence.pk]})
    silence.refresh_from_db()
    assert silence.ends_at == T0 + timedelta(hours=1)
    ended = AuditLog.objects.get(action="ALERT_SILENCE_ENDED")
    assert ended.user_email == "founder@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"rule": "no_such_rule"}, "Select a valid choice."),
        ({"fingerprint": "error_rate"}, "Alerts of slow_database have the fingerprint"),
        ({"ends_at_1": "15:00:00"}, "A silence must end after it starts."),
        ({"reason": ""}, "This field is required."),
    ],
)
def test_a_silence_the_admin_cannot_accept_is_refused_and_writes_nothing(
    founder, time_machine, change, error
):
    time_machine.move_to(T0, tick=False)
    client = Client()
    client.force_login(founder)
    form = {
        "rule": "slow_database",
        "fingerprint": "",
        "starts_at_0": "2026-11-20",
        "starts_at_1": "15:30:00",
        "ends_at_0": "2026-11-20",
        "ends_at_1": "18:30:00",
        "reason": "index rebuild",
    }

    response = client.post("/admin/alerts/silence/add/", {**form, **change})

    assert response.status_code == 200
    assert error in response.text
    assert Silence.objects.count() == 0
    assert not AuditLog.objects.filter(action="ALERT_SILENCED").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["marketing", "teacher"])
def test_only_founders_reach_the_silences_in_the_admin(request, role):
    client = Client()
    client.force_login(request.getfixturevalue(role))

    assert client.get("/admin/alerts/silence/").status_code == 302
    assert client.get("/admin/alerts/silence/add/").status_code == 302
    assert Client().get("/admin/alerts/silence/").status_code == 302
