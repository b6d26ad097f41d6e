"""A real Celery worker and beat (subprocesses) on the local Redis and the test database.

Proves, end to end: a CRITICAL event's alert reaches a webhook through the worker, and beat runs
the periodic evaluation on its schedule (a critical event whose on-commit enqueue was lost is
delivered by it), and the monitoring heartbeat advances (when monitoring.tasks is installed).
Beat's check run pings the dead man's switch (a local HTTP server) through the worker, /fail when
money operations fail, and the pings stop when beat stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from alerts.models import CriticalEvent
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent
from monitoring.checks import heartbeat_age_seconds

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 45
DEADMAN_PING = "/ping/0c1d2e3f"


def _wait_for(predicate, *, timeout: float = DEADLINE_SECONDS, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)  # polling separate processes: there is no clock to move
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def celery_processes(transactional_db, webhooks, tmp_path):
    """Start `celery worker` and `celery beat` against this test's database; stop them after."""
    db = connection.settings_dict
    credentials = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    database_url = (
        f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CI", "DEBUG")},
        "DEBUG": "1",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "ALERT_EVALUATE_SECONDS": "1",
        "ALERT_SWEEP_SECONDS": "1",
        "MONITORING_HEARTBEAT_SECONDS": "1",
        "HEALTH_CHECK_RUN_SECONDS": "1",
        "HEALTH_CACHE_SECONDS": "0",
        "DEADMAN_PING_URL": webhooks.base + DEADMAN_PING,
        "ALERT_CRITICAL_GROUP_SECONDS": "1",
        "ALERT_DIGEST_HOUR": "24",
        "FOUNDER_ALERT_EMAILS": "",
        "ALERT_WEBHOOK_URLS": "json+" + webhooks.script("/hook"),
        "SENTRY_DSN": "",
    }
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("worker", "beat")}  # noqa: SIM115
    commands = {
        "worker": ["worker", "--pool", "solo", "--loglevel", "INFO", "--without-gossip",
                   "--without-mingle", "--without-heartbeat"],
        "beat": ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")],
    }  # fmt: skip
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "planbeta", *args],
            cwd=ROOT,
            env=env,
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, args in commands.items()
    }
    try:
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            logs[name].close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_deliver_critical_alerts_end_to_end(
    celery_on_redis, celery_processes, webhooks, settings
):
    settings.FOUNDER_ALERT_EMAILS = []
    settings.ALERT_WEBHOOK_URLS = ["json+" + webhooks.base + "/hook"]

    def critical_alerts():
        # Other rules (health, heartbeat) may speak on the same hook; this test counts rule 1.
        return [hit for hit in webhooks.received("/hook") if hit["rule"] == "critical_event"]

    # Queued on commit to the worker, which evaluates rule 1 and delivers.
    first = audit_record_independent(
        AuditEntry(
            Action.LEAD_TO_STUDENT_CONVERSION, severity=Severity.CRITICAL, description="failed"
        )
    )
    [hit] = _wait_for(critical_alerts, what="the first critical alert")
    assert hit["title"] == f"Critical event: LEAD_TO_STUDENT_CONVERSION (audit #{first.pk})"

    # The on-commit enqueue is lost: only beat's periodic evaluation can find this one.
    settings.AUDIT_CRITICAL_HOOK = ""
    second = audit_record_independent(
        AuditEntry(Action.DATABASE_ERROR, severity=Severity.CRITICAL, description="failed")
    )
    _wait_for(lambda: len(critical_alerts()) >= 2, what="the swept critical alert")
    assert critical_alerts()[1]["facts"]["auditId"] == second.pk
    assert CriticalEvent.objects.filter(announced_at__isnull=True).count() == 0
    assert len(critical_alerts()) == 2
    assert all(p.poll() is None for p in celery_processes.values())

    # The monitoring heartbeat, sent by the same beat through the same worker, advances.
    _wait_for(lambda: heartbeat_age_seconds() is not None, what="a heartbeat")
    seen_at, first_age = time.monotonic(), heartbeat_age_seconds()
    # Advanced: younger than the first reading would be by now, had nothing been written.
    _wait_for(
        lambda: heartbeat_age_seconds() < first_age + (time.monotonic() - seen_at) - 0.5,
        what="the heartbeat to advance",
    )


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_beat_pings_the_dead_mans_switch_until_it_stops(celery_processes, webhooks):
    # Success pings, through beat, the broker and a worker.
    _wait_for(lambda: len(webhooks.received(DEADMAN_PING)) >= 2, what="two success pings")
    assert webhooks.received(DEADMAN_PING)[0]["money"] == "healthy"

    # Two failed payments in a row: money operations are unhealthy, the run pings /fail.
    for _ in range(2):
        audit_record_independent(
            AuditEntry(Action.PAYMENT_RECEIVED, severity=Severity.CRITICAL, description="failed")
        )
    [first_fail, *_] = _wait_for(
        lambda: webhooks.received(DEADMAN_PING + "/fail"), what="a fail ping"
    )
    assert (first_fail["money"], first_fail["notHealthy"]) == ("unhealthy", ["moneyOperations"])

    # Beat stops (the host's scheduler is dead): once the queued runs are done, no ping comes.
    beat = celery_processes["beat"]
    beat.send_signal(signal.SIGTERM)
    beat.wait(timeout=15)

    def pings() -> int:
        return len(webhooks.received(DEADMAN_PING)) + len(webhooks.received(DEADMAN_PING + "/fail"))

    def quiet_for(seconds: float) -> bool:
        before = pings()
        time.sleep(seconds)  # another process's schedule: there is no clock to move
        return pings() == before

    _wait_for(lambda: quiet_for(3), what="the pings to stop")
    assert quiet_for(4)  # four run intervals without a ping
    assert celery_processes["worker"].poll() is None  # the worker lives; only beat is gone
