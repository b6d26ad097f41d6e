"""Redis down: a critical alert waits in the outbox and goes out once Redis is back."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connection

from alerts import tasks
from alerts.models import Notification
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent
from planbeta.celery import app
from tests.alerts.conftest import free_port


def _close_worker_connection(**kwargs):
    connection.close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_critical_alert_waits_and_is_delivered_when_it_is_back(
    channels, celery_on_redis, settings
):
    settings.ALERT_DIGEST_HOUR = 24
    celery_on_redis(f"redis://127.0.0.1:{free_port()}/13")  # Redis is down

    row = audit_record_independent(
        AuditEntry(
            Action.LEAD_TO_STUDENT_CONVERSION, severity=Severity.CRITICAL, description="failed"
        )
    )

    assert row is not None
    waiting = Notification.objects.order_by("channel")
    assert [(n.channel, n.status, n.attempts) for n in waiting] == [
        ("discord", "PENDING", 0),
        ("email", "PENDING", 0),
        ("json", "PENDING", 0),
        ("slack", "PENDING", 0),
    ]
    assert channels["webhooks"].requests == [] and channels["mail"].messages == []

    celery_on_redis(settings.CELERY_BROKER_URL)  # Redis is back
    task_postrun.connect(_close_worker_connection)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            tasks.sweep_outbox.delay()  # what beat sends every 30 s
            deadline = time.monotonic() + 15
            while (
                time.monotonic() < deadline and Notification.objects.exclude(status="SENT").exists()
            ):
                time.sleep(0.1)
    finally:
        task_postrun.disconnect(_close_worker_connection)

    assert set(Notification.objects.values_list("status", "attempts")) == {("SENT", 1)}
    assert len(channels["webhooks"].requests) == 3
    assert len(channels["mail"].messages) == 1
