"""Thin, idempotent Celery tasks: each takes ids (or nothing), calls one service, and returns.

Retries are not Celery's: a failed delivery is written back to its outbox row with the time of
its next attempt, and `sweep_outbox` (beat, every 30 s) hands due rows to the worker again. That
way a retry survives a worker restart or a broker outage. The audit context (source TASK, the
request id of the request that queued the task) is opened by the signals in planbeta/celery.py.
"""

from __future__ import annotations

from celery import shared_task

from alerts import delivery, services


@shared_task(soft_time_limit=50, time_limit=70)
def evaluate_alert_rules() -> int:
    return len(services.evaluate_rules())


@shared_task(soft_time_limit=50, time_limit=70)
def process_critical_events() -> int:
    return len(services.process_critical_events())


@shared_task(soft_time_limit=60, time_limit=90)
def deliver_notification(notification_id: int) -> str | None:
    return delivery.deliver_notification(notification_id)


@shared_task(soft_time_limit=50, time_limit=70)
def sweep_outbox() -> int:
    return delivery.sweep_outbox()
