"""Rule 1: CRITICAL audit events, queued on commit, swept when missed, grouped when bursting."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from alerts.models import AlertState, CriticalEvent, Notification
from alerts.services import evaluate_rules, process_critical_events
from audit.models import Action, AuditLog, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent, audit_record_many

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_digest(settings):
    settings.ALERT_DIGEST_HOUR = 24


def conversion_failed(**extra):
    return audit_record_independent(
        AuditEntry(
            Action.LEAD_TO_STUDENT_CONVERSION,
            severity=Severity.CRITICAL,
            description="Conversion failed for Priya Raman (+919847012345), payment 134.00 EUR",
            entity_type="Invoice",
            entity_id=42,
            metadata={"studentName": "Priya Raman", "whatsapp": "+919847012345"},
            **extra,
        ),
    )


@pytest.mark.django_db
def test_critical_event_is_announced_on_every_channel_at_once_without_personal_data(
    channels, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        row = conversion_failed()

    assert sorted(Notification.objects.values_list("kind", "channel", "status")) == [
        ("CRITICAL", "discord", "SENT"),
        ("CRITICAL", "email", "SENT"),
        ("CRITICAL", "json", "SENT"),
        ("CRITICAL", "slack", "SENT"),
    ]
    [generic] = channels["webhooks"].received("/hook")
    assert generic["title"] == f"Critical event: LEAD_TO_STUDENT_CONVERSION (audit #{row.pk})"
    assert generic["facts"] == {
        "action": "LEAD_TO_STUDENT_CONVERSION",
        "entity": "Invoice 42",
        "auditId": row.pk,
    }
    assert generic["link"] == (
        f"https://office.planbeta.example/admin/audit/auditlog/{row.pk}/change/"
    )
    everything_sent = json.dumps(channels["webhooks"].requests) + json.dumps(
        channels["mail"].messages
    )
    for personal in ("Priya", "Raman", "9847012345", "134.00"):
        assert personal not in everything_sent


@pytest.mark.django_db
def test_critical_row_in_a_business_transaction_is_announced_when_it_commits(
    channels, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        audit_record(
            AuditEntry(Action.SYSTEM_ERROR, severity=Severity.CRITICAL, description="ledger off")
        )
    assert Notification.objects.count() == 0  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()

    assert Notification.objects.filter(kind="CRITICAL").count() == 4


@pytest.mark.django_db
def test_a_critical_row_written_with_others_in_one_insert_is_announced_when_it_commits(
    channels, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rows = audit_record_many(
            [
                AuditEntry(Action.PAYMENT_RECEIVED, description="paid"),
                AuditEntry(Action.SYSTEM_ERROR, severity=Severity.CRITICAL, description="off"),
            ]
        )
    assert (len(callbacks), Notification.objects.count()) == (1, 0)
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()

    [generic] = channels["webhooks"].received("/hook")
    assert generic["facts"]["auditId"] == rows[1].pk
    assert Notification.objects.filter(kind="CRITICAL").count() == 4


@pytest.mark.django_db
def test_a_critical_row_rolled_back_with_its_transaction_alerts_nobody(
    channels, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_record(
                AuditEntry(
                    Action.SYSTEM_ERROR, severity=Severity.CRITICAL, description="ledger off"
                )
            )
            raise RuntimeError("the business change failed")
        evaluate_rules()

    assert AuditLog.objects.count() == 0
    assert Notification.objects.count() == 0
    assert channels["webhooks"].requests == [] and channels["mail"].messages == []


@pytest.mark.django_db
def test_a_critical_event_the_queue_missed_is_caught_by_the_periodic_evaluation(
    channels, django_capture_on_commit_callbacks, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    settings.AUDIT_CRITICAL_HOOK = ""  # the on-commit enqueue was lost
    row = conversion_failed()
    assert Notification.objects.count() == 0

    time_machine.move_to(T0 + timedelta(minutes=1), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_rules()

    assert Notification.objects.filter(kind="CRITICAL", status="SENT").count() == 4
    assert CriticalEvent.objects.get(audit_id=row.pk).announced_at == T0 + timedelta(minutes=1)


@pytest.mark.django_db
def test_a_burst_of_fifty_critical_events_is_one_message_plus_one_summary(
    channels, django_capture_on_commit_callbacks, settings, time_machine
):
    settings.ALERT_WEBHOOK_URLS = settings.ALERT_WEBHOOK_URLS[:1]  # Slack only, for brevity
    settings.FOUNDER_ALERT_EMAILS = []
    time_machine.move_to(T0, tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        rows = [conversion_failed() for _ in range(30)]
        time_machine.move_to(T0 + timedelta(minutes=2), tick=False)
        rows += [
            audit_record_independent(
                AuditEntry(Action.DATABASE_ERROR, severity=Severity.CRITICAL, description="db")
            )
            for _ in range(20)
        ]
        time_machine.move_to(T0 + timedelta(minutes=4, seconds=59), tick=False)
        process_critical_events()

    assert list(Notification.objects.values_list("kind", flat=True)) == ["CRITICAL"]

    with django_capture_on_commit_callbacks(execute=True):
        time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
        process_critical_events()
        time_machine.move_to(T0 + timedelta(minutes=6), tick=False)
        process_critical_events()

    assert list(Notification.objects.order_by("id").values_list("kind", flat=True)) == [
        "CRITICAL",
        "SUMMARY",
    ]
    summary = Notification.objects.get(kind="SUMMARY")
    assert summary.title == "49 more critical events since the last alert"
    assert summary.facts == {
        "LEAD_TO_STUDENT_CONVERSION": 29,
        "DATABASE_ERROR": 20,
        "auditIds": f"{rows[1].pk}-{rows[-1].pk}",
    }
    assert len(channels["webhooks"].received("/slack")) == 2

    # Quiet for a whole window: the burst is over, and the next event is announced at once.
    with django_capture_on_commit_callbacks(execute=True):
        time_machine.move_to(T0 + timedelta(minutes=10), tick=False)
        process_critical_events()
        assert AlertState.objects.get(fingerprint="critical_event").state == "resolved"
        time_machine.move_to(T0 + timedelta(minutes=11), tick=False)
        conversion_failed()
    assert Notification.objects.order_by("-id").first().kind == "CRITICAL"
    assert len(channels["webhooks"].received("/slack")) == 3


@pytest.mark.django_db
def test_critical_history_older_than_a_day_is_not_announced(channels, time_machine, settings):
    settings.AUDIT_CRITICAL_HOOK = ""
    AuditLog.objects.create(
        action="SYSTEM_ERROR",
        severity="CRITICAL",
        description="old",
        created_at=T0 - timedelta(days=2),
    )
    time_machine.move_to(T0, tick=False)

    assert process_critical_events() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_critical_row_that_commits_after_a_newer_one_is_still_announced(
    channels, settings, time_machine
):
    settings.AUDIT_CRITICAL_HOOK = ""
    settings.ALERT_WEBHOOK_URLS = settings.ALERT_WEBHOOK_URLS[2:]  # the generic webhook only
    settings.FOUNDER_ALERT_EMAILS = []
    time_machine.move_to(T0, tick=False)

    with transaction.atomic(using="audit"):  # a long business transaction on another connection
        slow = AuditLog(
            action="SYSTEM_ERROR", severity="CRITICAL", description="slow", created_at=T0
        )
        slow.save(using="audit")
        quick = AuditLog.objects.create(
            action="DATABASE_ERROR", severity="CRITICAL", description="quick", created_at=T0
        )
        process_critical_events()
    assert slow.pk < quick.pk

    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
    process_critical_events()

    assert [hit["facts"].get("auditId") for hit in channels["webhooks"].received("/hook")] == [
        quick.pk,
        slow.pk,
    ]
