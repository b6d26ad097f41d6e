"""Escalation: an alert nobody acknowledged in time goes to the second list, once per firing."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import AlertState, Notification
from alerts.rules import Observation, Rule
from alerts.services import apply_observation, evaluate_rules
from alerts.suppression import silence_create
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent
from monitoring.checks import record_heartbeat
from tests.alerts.conftest import Reply
from tests.alerts.test_concurrency import _run_at_once
from tests.html_forms import read_post_form

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def escalation(settings, channels):
    """The other founder's address and an SMS gateway's webhook, both local."""
    settings.ALERT_DIGEST_HOUR = 24
    settings.ALERT_ESCALATE_AFTER_MINUTES = 30
    settings.ALERT_ESCALATION_EMAILS = ["ravi.mobile@planbeta.example"]
    settings.ALERT_ESCALATION_WEBHOOK_URLS = [
        "json+" + channels["webhooks"].script("/sms", Reply(200, b"{}"))
    ]
    return channels


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks, time_machine):
    def evaluate(at: datetime) -> list[tuple[str, str, str]]:
        time_machine.move_to(at, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            ids = evaluate_rules()
        return sorted(
            Notification.objects.filter(pk__in=ids).values_list("kind", "channel", "target_label")
        )

    return evaluate


def conversion_failed(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return audit_record_independent(
            AuditEntry(
                Action.LEAD_TO_STUDENT_CONVERSION,
                severity=Severity.CRITICAL,
                description="Conversion failed for Priya Raman (+919847012345)",
                entity_type="Invoice",
                entity_id=42,
                metadata={"studentName": "Priya Raman"},
            ),
        )


def escalated_to(rows) -> list[tuple[str, str, str]]:
    return [row for row in rows if row[0] == "ESCALATION"]


ESCALATED = [
    ("ESCALATION", "email", "escalation ravi.mobile@planbeta.example"),
    ("ESCALATION", "json", "escalation json 127.0.0.1"),
]


@pytest.mark.django_db
def test_a_critical_event_nobody_acknowledges_escalates_after_30_minutes_once(
    escalation, evaluate, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    row = conversion_failed(django_capture_on_commit_callbacks)
    webhooks, mail = escalation["webhooks"], escalation["mail"]
    assert webhooks.received("/sms") == []
    assert len(mail.messages) == 1  # the founders' e-mail

    assert evaluate(T0 + timedelta(minutes=29, seconds=59)) == []
    assert evaluate(T0 + timedelta(minutes=30)) == ESCALATED

    [sms] = webhooks.received("/sms")
    assert sms["kind"] == "ESCALATION"
    assert sms["title"] == (
        f"Not acknowledged: Critical event: LEAD_TO_STUDENT_CONVERSION (audit #{row.pk})"
    )
    assert (
        sms["text"] == "Nobody acknowledged this alert within 30 minutes of 2026-11-20 15:30 IST."
    )
    assert sms["facts"]["unacknowledgedFor"] == "30 min"
    assert sms["ackUrl"].startswith("https://office.planbeta.example/alerts/ack/")
    escalation_mail = mail.messages[-1]
    assert escalation_mail["to"] == ["ravi.mobile@planbeta.example"]
    assert (
        "Subject: [Plan Beta CRITICAL] Not acknowledged: Critical event"
        in (escalation_mail["data"])
    )
    # The founders' own channels were told once, at T0, and are not told again.
    assert len(webhooks.received("/slack")) == 1
    everything = json.dumps(webhooks.requests) + json.dumps(mail.messages)
    for personal in ("Priya", "Raman", "9847012345"):
        assert personal not in everything

    assert evaluate(T0 + timedelta(minutes=31)) == []
    assert evaluate(T0 + timedelta(hours=5)) == []
    assert len(webhooks.received("/sms")) == 1


@pytest.mark.django_db
def test_an_alert_acknowledged_in_time_is_not_escalated(
    escalation, evaluate, founder, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    conversion_failed(django_capture_on_commit_callbacks)
    link = urlsplit(escalation["webhooks"].received("/hook")[-1]["ackUrl"]).path
    time_machine.move_to(T0 + timedelta(minutes=29), tick=False)
    client = Client(enforce_csrf_checks=True)
    client.force_login(founder)
    fields, _ = read_post_form(client.get(link).text, having="csrfmiddlewaretoken")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(link, fields)

    assert escalated_to(evaluate(T0 + timedelta(minutes=30))) == []
    assert evaluate(T0 + timedelta(hours=3)) == []
    assert escalation["webhooks"].received("/sms") == []
    assert AlertState.objects.get(rule="critical_event").escalated_at is None


@pytest.mark.django_db
def test_an_alert_that_resolves_in_time_is_not_escalated_and_a_new_firing_counts_afresh(
    escalation, evaluate, settings
):
    settings.ALERT_RESOLVE_AFTER_MINUTES = 5
    record_heartbeat(now=T0 - timedelta(seconds=200))  # rule 5b; health expects no heartbeat
    assert ("FIRING", "slack", "slack 127.0.0.1") in evaluate(T0)
    record_heartbeat(now=T0 + timedelta(minutes=10))
    evaluate(T0 + timedelta(minutes=10))
    record_heartbeat(now=T0 + timedelta(minutes=15))
    assert ("RESOLVED", "slack", "slack 127.0.0.1") in evaluate(T0 + timedelta(minutes=15))

    record_heartbeat(now=T0 + timedelta(minutes=30))
    assert evaluate(T0 + timedelta(minutes=30)) == []

    record_heartbeat(now=T0 + timedelta(minutes=36))
    assert ("FIRING", "slack", "slack 127.0.0.1") in evaluate(T0 + timedelta(minutes=40))
    assert evaluate(T0 + timedelta(minutes=69)) == []
    assert evaluate(T0 + timedelta(minutes=70)) == ESCALATED


@pytest.mark.django_db
def test_an_escalated_alert_tells_the_escalation_channels_who_acknowledged_and_that_it_resolved(
    escalation, django_capture_on_commit_callbacks, founder, time_machine, evaluate
):
    rule = Rule("payments_failing", check=lambda now: None)

    def observe(at, firing):
        time_machine.move_to(at, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            apply_observation(
                rule=rule,
                observation=Observation(firing=firing, title="Payment provider is failing"),
                now=timezone.now(),
            )

    observe(T0, True)
    evaluate(T0 + timedelta(minutes=30))
    link = urlsplit(escalation["webhooks"].received("/sms")[-1]["ackUrl"]).path
    client = Client(enforce_csrf_checks=True)
    client.force_login(founder)
    fields, _ = read_post_form(client.get(link).text, having="csrfmiddlewaretoken")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(link, fields).status_code == 302

    acknowledged = escalation["webhooks"].received("/sms")[-1]
    assert acknowledged["title"] == "Acknowledged by Fiona Founder: Payment provider is failing"
    assert sorted(
        Notification.objects.filter(kind="ACKNOWLEDGED").values_list("channel", "target_label")
    ) == [
        ("discord", "discord 127.0.0.1"),
        ("email", "escalation ravi.mobile@planbeta.example"),
        ("email", "founder@planbeta.example, cofounder@planbeta.example"),
        ("json", "escalation json 127.0.0.1"),
        ("json", "json 127.0.0.1"),
        ("slack", "slack 127.0.0.1"),
    ]

    observe(T0 + timedelta(hours=1), False)
    observe(T0 + timedelta(hours=1, minutes=5), False)
    assert escalation["webhooks"].received("/sms")[-1]["status"] == "resolved"
    assert Notification.objects.filter(kind="RESOLVED").count() == 6


@pytest.mark.django_db
def test_a_silenced_alert_escalates_only_once_its_silence_ends_unanswered(
    escalation, evaluate, founder, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    conversion_failed(django_capture_on_commit_callbacks)
    silence_create(
        actor=founder,
        rule="critical_event",
        ends_at=T0 + timedelta(hours=1),
        reason="known ledger issue",
    )

    assert evaluate(T0 + timedelta(minutes=30)) == []
    assert evaluate(T0 + timedelta(minutes=59)) == []
    assert evaluate(T0 + timedelta(hours=1)) == ESCALATED


@pytest.mark.django_db
def test_without_escalation_channels_nothing_is_escalated(
    channels, evaluate, settings, time_machine, django_capture_on_commit_callbacks
):
    settings.ALERT_DIGEST_HOUR = 24
    time_machine.move_to(T0, tick=False)
    conversion_failed(django_capture_on_commit_callbacks)

    assert evaluate(T0 + timedelta(hours=1)) == []
    assert AlertState.objects.get(rule="critical_event").escalated_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_evaluators_running_at_once_escalate_exactly_once(escalation, settings, time_machine):
    settings.AUDIT_CRITICAL_HOOK = ""  # the racing evaluators announce the event, then escalate
    time_machine.move_to(T0, tick=False)
    audit_record_independent(
        AuditEntry(Action.SYSTEM_ERROR, severity=Severity.CRITICAL, description="x")
    )
    evaluate_rules()
    time_machine.move_to(T0 + timedelta(minutes=30), tick=False)

    queued = _run_at_once(evaluate_rules)

    assert len([pk for ids in queued for pk in ids]) == 2
    assert sorted(
        Notification.objects.filter(kind="ESCALATION").values_list("channel", "status")
    ) == [("email", "SENT"), ("json", "SENT")]
    assert len(escalation["webhooks"].received("/sms")) == 1
    assert [m["to"] for m in escalation["mail"].messages].count(
        ["ravi.mobile@planbeta.example"]
    ) == 1
