from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from alerts.delivery import sweep_outbox
from alerts.models import MaintenanceMute, Notification
from alerts.services import mute_create
from audit.models import Action, AuditLog, Severity
from audit.services import AuditEntry, audit_record_independent
from tests.alerts.conftest import Reply

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _critical():
    return audit_record_independent(
        AuditEntry(Action.SYSTEM_ERROR, severity=Severity.CRITICAL, description="ledger off")
    )


@pytest.mark.django_db
def test_during_a_maintenance_mute_alerts_are_recorded_but_not_sent(
    channels, founder, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)
    mute_create(actor=founder, ends_at=T0 + timedelta(hours=1), reason="database upgrade")

    with django_capture_on_commit_callbacks(execute=True):
        _critical()
    time_machine.move_to(T0 + timedelta(hours=2), tick=False)
    sweep_outbox()

    assert set(Notification.objects.values_list("status", flat=True)) == {"MUTED"}
    assert channels["webhooks"].requests == [] and channels["mail"].messages == []
    audit = AuditLog.objects.get(action="ALERTS_MUTED")
    assert (audit.user_email, audit.entity_type) == ("founder@example.com", "MaintenanceMute")


@pytest.mark.django_db
def test_founder_mutes_alerts_from_the_admin(founder, time_machine):
    time_machine.move_to(T0, tick=False)
    client = Client()
    client.force_login(founder)

    response = client.post(
        "/admin/alerts/maintenancemute/add/",
        {
            "starts_at_0": "2026-11-20",
            "starts_at_1": "15:30:00",
            "ends_at_0": "2026-11-20",
            "ends_at_1": "17:30:00",
            "reason": "server move",
        },
    )

    assert response.status_code == 302
    mute = MaintenanceMute.objects.get()
    assert (mute.starts_at, mute.ends_at, mute.reason, mute.created_by) == (
        T0,
        T0 + timedelta(hours=2),
        "server move",
        founder,
    )
    assert AuditLog.objects.filter(action="ALERTS_MUTED", user_id=founder.pk).count() == 1


@pytest.mark.django_db
def test_founder_ends_a_mute_early_and_alerts_flow_again(
    channels, founder, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)
    mute = mute_create(actor=founder, ends_at=T0 + timedelta(hours=3), reason="upgrade")
    client = Client()
    client.force_login(founder)
    time_machine.move_to(T0 + timedelta(minutes=20), tick=False)

    client.post(
        "/admin/alerts/maintenancemute/",
        {"action": "end_now", "_selected_action": [mute.pk]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        _critical()

    mute.refresh_from_db()
    assert mute.ends_at == T0 + timedelta(minutes=20)
    assert set(Notification.objects.values_list("status", flat=True)) == {"SENT"}
    assert AuditLog.objects.filter(action="ALERTS_UNMUTED", user_id=founder.pk).count() == 1


@pytest.mark.django_db
def test_founder_sees_sent_and_failed_deliveries_and_others_do_not(
    channels, founder, marketing, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_WEBHOOK_URLS = [
        "slack+" + channels["webhooks"].script("/slack", Reply(200)),
        "json+" + channels["webhooks"].script("/gone", Reply(410, b"channel_is_archived")),
    ]
    settings.FOUNDER_ALERT_EMAILS = []
    with django_capture_on_commit_callbacks(execute=True):
        _critical()
    founder_client, marketing_client = Client(), Client()
    founder_client.force_login(founder)
    marketing_client.force_login(marketing)

    page = founder_client.get("/admin/alerts/notification/")
    failed = founder_client.get("/admin/alerts/notification/?status__exact=FAILED")

    assert page.status_code == 200
    assert "SENT" in page.text and "FAILED" in page.text
    assert "HTTP 410: channel_is_archived" in failed.text
    assert marketing_client.get("/admin/alerts/notification/").status_code == 302


@pytest.mark.django_db
def test_founder_retries_a_failed_delivery_from_the_admin(
    channels, founder, settings, django_capture_on_commit_callbacks
):
    hook = channels["webhooks"].script("/hook", Reply(404, b"no such hook"), Reply(200))
    settings.ALERT_WEBHOOK_URLS = ["json+" + hook]
    settings.FOUNDER_ALERT_EMAILS = []
    with django_capture_on_commit_callbacks(execute=True):
        _critical()
    row = Notification.objects.get()
    assert row.status == "FAILED"
    client = Client()
    client.force_login(founder)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/alerts/notification/",
            {"action": "retry_now", "_selected_action": [row.pk]},
        )

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("SENT", 2)
    assert AuditLog.objects.filter(action="ALERT_DELIVERY_RETRIED").count() == 1


@pytest.mark.django_db(transaction=True)
def test_run_alert_rules_command_evaluates_and_delivers_inline_without_redis(
    channels, settings, capsys
):
    settings.AUDIT_CRITICAL_HOOK = ""
    settings.ALERT_DIGEST_HOUR = 24
    _critical()

    call_command("run_alert_rules")

    assert capsys.readouterr().out.strip() == "queued 4 notifications, handed 0 to delivery"
    assert set(Notification.objects.values_list("status", flat=True)) == {"SENT"}
    assert len(channels["webhooks"].received("/slack")) == 1


@pytest.mark.django_db
def test_activity_dashboard_shows_open_alerts_and_the_latest_deliveries(
    channels, founder, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_WEBHOOK_URLS = [
        "json+" + channels["webhooks"].script("/gone", Reply(404, b"no such hook"))
    ]
    settings.FOUNDER_ALERT_EMAILS = []
    with django_capture_on_commit_callbacks(execute=True):
        row = _critical()
    client = Client()
    client.force_login(founder)

    page = client.get("/dashboard/activity")

    assert page.status_code == 200
    assert f"Critical event: SYSTEM_ERROR (audit #{row.pk})" in page.text
    assert '<tr class="delivery-FAILED">' in page.text
    assert "HTTP 404: no such hook" in page.text
