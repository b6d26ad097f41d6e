"""The Celery app and the whole beat schedule."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")

app = Celery("planbeta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The health check reports this heartbeat's age: beat, broker and a worker all work.
    "monitoring-heartbeat": {
        "task": "monitoring.heartbeat",
        "schedule": float(os.environ.get("MONITORING_HEARTBEAT_SECONDS", "60")),
    },
}

REQUEST_ID_HEADER = "planbeta_request_id"


@signals.before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    # A task queued by a request keeps that request's id, so its audit rows join the same story.
    from audit.context import current_context

    if headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, current_context().request_id)


@signals.task_prerun.connect
def _open_task_context(task: Any = None, **kwargs: Any) -> None:
    from audit.context import current_context, open_context
    from audit.models import Source

    # Eager tasks (no broker) are never published: they run inside the caller's context.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or current_context().request_id
    task.request._audit_token = open_context(
        source=Source.TASK, label=task.name, request_id=request_id
    )


@signals.task_postrun.connect
def _close_task_context(task: Any = None, **kwargs: Any) -> None:
    from audit.context import unbind

    token = getattr(task.request, "_audit_token", None)
    if token is not None:
        unbind(token)


# Beat runs as its own process and needs its own Sentry client; celeryd_init alone misses it.
@signals.celeryd_init.connect
def _init_sentry_in_worker(**kwargs):
    from planbeta.sentry import init_sentry

    init_sentry("worker")


@signals.beat_init.connect
def _init_sentry_in_beat(**kwargs):
    from planbeta.sentry import init_sentry

    init_sentry("beat")


# Alerts: rules every minute; the outbox sweep re-queues due and stuck deliveries. The intervals
# are variables so that an end-to-end test can run beat on a short schedule.
app.conf.beat_schedule.update(
    {
        "alerts-evaluate-rules": {
            "task": "alerts.tasks.evaluate_alert_rules",
            "schedule": float(os.environ.get("ALERT_EVALUATE_SECONDS", "60")),
        },
        "alerts-sweep-outbox": {
            "task": "alerts.tasks.sweep_outbox",
            "schedule": float(os.environ.get("ALERT_SWEEP_SECONDS", "30")),
        },
    }
)
