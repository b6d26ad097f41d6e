"""Thin, idempotent Celery tasks: each takes ids (or nothing), calls one service, and returns.

Retries are not Celery's: a failed delivery is written back to its outbox row with the time of
its next attempt, and `sweep_outbox` (beat, every 30 s) hands due rows to the worker again. That
way a retry survives a worker restart or a broker outage.
"""

from __future__ import annotations

from celery import shared_task

from alerts import services
from audit.context import audit_context
from audit.models import Source


@shared_task(soft_time_limit=50, time_limit=70)
def evaluate_alert_rules() -> int:
    with audit_context(source=Source.TASK, label="evaluate_alert_rules"):
        return len(services.evaluate_rules())


@shared_task(soft_time_limit=50, time_limit=70)
def process_critical_events() -> int:
    with audit_context(source=Source.TASK, label="process_critical_events"):
        return len(services.process_critical_events())


@shared_task(soft_time_limit=60, time_limit=90)
def deliver_notification(notification_id: int) -> str | None:
    with audit_context(source=Source.TASK, label="deliver_notification"):
        return services.deliver_notification(notification_id)


@shared_task(soft_time_limit=50, time_limit=70)
def sweep_outbox() -> int:
    with audit_context(source=Source.TASK, label="sweep_outbox"):
        return services.sweep_outbox()
