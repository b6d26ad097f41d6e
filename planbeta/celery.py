"""The Celery app and the whole beat schedule."""

import logging
import os
from typing import Any

from celery import Celery, signals
from celery.app.log import TaskFormatter
from celery.utils.log import ColorFormatter

from core.error_text import SafeFormatter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")

app = Celery("planbeta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The whole beat schedule; its intervals are settings (an end-to-end test shortens them)."""
    from django.conf import settings

    return {
        # The health check reports this heartbeat's age: beat, broker and a worker all work.
        "monitoring-heartbeat": {
            "task": "monitoring.heartbeat",
            "schedule": settings.MONITORING_HEARTBEAT_SECONDS,
        },
        # Money rows against the audit trail; a mismatch is a CRITICAL row, so an alert.
        "monitoring-reconcile": {
            "task": "monitoring.reconcile",
            "schedule": settings.RECONCILIATION_SECONDS,
        },
        # The checks on a worker: their states for /status, then the dead man's switch.
        "monitoring-check-run": {
            "task": "monitoring.check_run",
            "schedule": settings.HEALTH_CHECK_RUN_SECONDS,
        },
        # Alert rules every minute.
        "alerts-evaluate-rules": {
            "task": "alerts.tasks.evaluate_alert_rules",
            "schedule": settings.ALERT_EVALUATE_SECONDS,
        },
        # The outbox sweep re-queues due and stuck deliveries.
        "alerts-sweep-outbox": {
            "task": "alerts.tasks.sweep_outbox",
            "schedule": settings.ALERT_SWEEP_SECONDS,
        },
        # Failure rows kept on disk while the database was away (audit.spool).
        "audit-replay-spool": {
            "task": "audit.replay_spool",
            "schedule": settings.AUDIT_SPOOL_REPLAY_SECONDS,
        },
        # The hash chain over the trail (audit.chain): seal, witness, verify.
        "audit-seal-chain": {"task": "audit.seal_chain", "schedule": settings.AUDIT_SEAL_SECONDS},
        "audit-checkpoint-chain": {
            "task": "audit.checkpoint_chain",
            "schedule": settings.AUDIT_CHECKPOINT_SECONDS,
        },
        # The minute counts that the 24 h stats and the error rate read, up to the horizon.
        "audit-fold-rollup": {
            "task": "audit.fold_rollup",
            "schedule": settings.AUDIT_ROLLUP_SECONDS,
        },
        # The months that hold each filter's rows, for reads that match few or none.
        "audit-fold-presence": {
            "task": "audit.fold_presence",
            "schedule": settings.AUDIT_ROLLUP_SECONDS,
        },
        "audit-verify-chain": {
            "task": "audit.verify_chain",
            "schedule": settings.AUDIT_VERIFY_SECONDS,
        },
        # The trail's monthly partitions, created a year ahead (audit.partitions).
        "audit-ensure-partitions": {
            "task": "audit.ensure_partitions",
            "schedule": settings.AUDIT_PARTITION_SECONDS,
        },
    }


# Set once the configuration is read, not at import: this module is imported while the Django
# settings themselves are loading (planbeta/__init__.py), before they can be read.
@app.on_after_configure.connect
def _set_beat_schedule(sender: Celery, **kwargs: Any) -> None:
    sender.conf.beat_schedule = beat_schedule()


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
    from core import db_deadline

    # Eager tasks (no broker) are never published: they run inside the caller's context.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or current_context().request_id
    task.request._audit_token = open_context(
        source=Source.TASK, label=task.name, request_id=request_id
    )
    # A task that found the database stalled stops waiting for it, as a request does.
    task.request._db_scope_token = db_deadline.open_scope()


@signals.task_postrun.connect
def _close_task_context(task: Any = None, **kwargs: Any) -> None:
    from audit.context import unbind
    from core import db_deadline

    token = getattr(task.request, "_db_scope_token", None)
    if token is not None:
        db_deadline.close_scope(token)
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


# After the worker's logging is set up, so that the line reaches its log.
@signals.celeryd_after_setup.connect
def _warn_worker_without_alert_channel(**kwargs: Any) -> None:
    from alerts.checks import warn_if_no_channel

    warn_if_no_channel("worker")


@signals.beat_init.connect
def _warn_beat_without_alert_channel(**kwargs: Any) -> None:
    from alerts.checks import warn_if_no_channel

    warn_if_no_channel("beat")


class _SafeColorFormatter(SafeFormatter, ColorFormatter):
    """Celery's worker and beat log format, without a database error's DETAIL/CONTEXT/HINT."""


class _SafeTaskFormatter(SafeFormatter, TaskFormatter):
    """Celery's task log format (task name and id), without database diagnostics."""


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_database_errors_safely(logger: logging.Logger, **kwargs: Any) -> None:
    # The worker and beat replace LOGGING's handlers with Celery's own, whose formatters would
    # print a failed task's database error in full: the refused row (core/error_text.py).
    for handler in logger.handlers:
        old = handler.formatter
        if not isinstance(old, ColorFormatter) or isinstance(old, SafeFormatter):
            continue
        safe = _SafeTaskFormatter if isinstance(old, TaskFormatter) else _SafeColorFormatter
        # celery-types leaves out the datefmt that ColorFormatter takes.
        handler.setFormatter(safe(old._fmt, use_color=old.use_color, datefmt=old.datefmt))  # type: ignore[call-arg]
