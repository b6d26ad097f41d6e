"""A database error never carries the row it refused into Sentry, the log or the audit trail.

PostgreSQL's CHECK violation quotes the whole refused row in its DETAIL ("Failing row contains
(…, Priya Raman, +919847012345, priya.raman@example.com, …)"); psycopg puts that text into the
exception, Django's IntegrityError copies it, and a handler that logs or re-raises it spreads it.
"""

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from audit.models import AuditLog
from core.error_text import SafeFormatter
from leads.models import Lead
from tests.factories import make_token

pytestmark = pytest.mark.urls("tests.sentry.urls")

PERSONAL = ("Priya", "priya.raman", "9847012345")
DIAGNOSTICS = ("Failing row", "DETAIL", "CONTEXT:", "HINT:")
CONSTRAINT = "lead_converted_has_converted_status"


@pytest.fixture
def log_output():
    """What the configured console handler writes, as production's log would hold it."""
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h.formatter, SafeFormatter)
    )
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def _assert_nothing_personal(text: str) -> None:
    for fragment in PERSONAL + DIAGNOSTICS:
        assert fragment not in text


def _database_exceptions(event: dict) -> list[dict]:
    return [
        value
        for value in event["exception"]["values"]
        if value["type"] in ("IntegrityError", "CheckViolation")
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_check_violation_in_a_page_reaches_sentry_the_log_and_the_trail_without_the_row(
    sentry, wsgi, log_output
):
    status, _, _ = wsgi("GET", "/test/refused-row")

    assert status == 500
    assert Lead.objects.count() == 0
    events = sentry.events()
    assert events
    for event in events:
        _assert_nothing_personal(json.dumps(event))
        assert "sys.argv" not in event.get("extra", {})
        assert [v["type"] for v in _database_exceptions(event)] == [
            "CheckViolation",
            "IntegrityError",
        ]
        for value in _database_exceptions(event):
            assert value["value"].startswith('new row for relation "leads_lead" violates check')
            assert value["value"].endswith(f"(SQLSTATE 23514, constraint {CONSTRAINT})")
        assert (event["tags"]["db.sqlstate"], event["tags"]["db.constraint"]) == (
            "23514",
            CONSTRAINT,
        )
    crumbs = [
        c for e in events for c in e["breadcrumbs"]["values"] if c["category"] == "tests.sentry"
    ]
    assert crumbs
    assert crumbs[0]["message"].startswith('lead not saved: new row for relation "leads_lead"')

    log = log_output.getvalue()
    assert "lead not saved: new row for relation" in log
    assert "Internal Server Error: /test/refused-row" in log
    assert "django.db.utils.IntegrityError: new row for relation" in log
    assert f"(SQLSTATE 23514, constraint {CONSTRAINT})" in log
    _assert_nothing_personal(log)

    [row] = AuditLog.objects.filter(action="SYSTEM_ERROR")
    assert row.error_message.startswith("IntegrityError: new row for relation")
    assert CONSTRAINT in row.error_message
    assert "psycopg.errors.CheckViolation: new row" in row.error_stack
    _assert_nothing_personal(row.error_message + row.error_stack + row.description)


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_error_raised_from_a_check_violation_in_the_api_carries_neither_its_row(
    sentry, wsgi, log_output, founder
):
    # The outer error quotes the database error in its own message, and chains it.
    status, _, body = wsgi(
        "POST",
        "/api/test/refused-row",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_token(founder)}",
    )

    assert status == 500
    assert json.loads(body)["code"] == "internal_error"
    assert Lead.objects.count() == 0
    [event] = sentry.events()
    _assert_nothing_personal(json.dumps(event))
    assert [v["type"] for v in event["exception"]["values"]] == [
        "CheckViolation",
        "IntegrityError",
        "RuntimeError",
    ]
    assert event["exception"]["values"][-1]["value"].startswith(
        'saving the lead failed: new row for relation "leads_lead"'
    )
    assert event["tags"]["db.constraint"] == CONSTRAINT

    log = log_output.getvalue()
    assert "lead not saved: new row for relation" in log
    _assert_nothing_personal(log)

    [row] = AuditLog.objects.filter(action="API_ERROR")
    assert row.error_message.startswith("RuntimeError: saving the lead failed: new row")
    assert "The above exception was the direct cause" in row.error_stack
    assert f"(SQLSTATE 23514, constraint {CONSTRAINT})" in row.error_stack
    _assert_nothing_personal(row.error_message + row.error_stack + row.description)


def test_the_celery_worker_and_its_tasks_log_in_their_format_without_the_row():
    # The worker replaces LOGGING's handlers with Celery's own; theirs are made safe as well.
    script = """
import logging, sys
import django
django.setup()
from celery.utils.log import get_task_logger
from planbeta.celery import app
app.log.setup_logging_subsystem(loglevel="INFO", colorize=False)
error = ValueError('new row violates check constraint "x"\\nDETAIL:  Failing row contains (Priya)')
for name in ("", "celery.task"):
    for handler in logging.getLogger(name).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stdout)
for logger in (logging.getLogger(), get_task_logger("leads.tasks")):
    try:
        raise RuntimeError("task failed") from error
    except RuntimeError:
        logger.exception("lead not saved: %s", error)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "planbeta.settings_test"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    root_line, task_line = [line for line in done.stdout.splitlines() if "lead not saved" in line]
    assert "ERROR/MainProcess] lead not saved: new row violates check constraint" in root_line
    # The task format: task name and id (unknown outside a task).
    assert "ERROR/MainProcess] ???[???]: lead not saved: new row violates check" in task_line
    assert done.stdout.count('ValueError: new row violates check constraint "x"') == 2
    assert "Priya" not in done.stdout
    assert "DETAIL" not in done.stdout
