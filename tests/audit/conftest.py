"""The audit tests' shared fixtures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit import partitions, retention, timeline
from core import db_deadline
from tests import database

MONTHS = 14
STEP = timedelta(hours=3)
ACTIONS = ["LOGIN", "LEAD_UPDATED", "PAYMENT_RECEIVED", "DATA_ACCESSED", "SYSTEM_ERROR"]
FILL = """
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    ip_address, user_agent, request_path, request_method, request_id, entity_type, entity_id,
    metadata, error_message, error_stack, created_at
)
SELECT
    (%(actions)s::text[])[1 + g %% 5],
    CASE WHEN g %% 5 = 4 THEN 'ERROR' WHEN g %% 7 = 0 THEN 'WARNING' ELSE 'INFO' END,
    'Row ' || g, 'REQUEST', 1 + g %% 3, 'staff@planbeta.example', 'Staff', 'MARKETING',
    '10.0.0.1', 'test', '/', 'GET', 'r' || g, 'Order', (g %% 40)::text, '{}'::jsonb, '', '',
    %(start)s::timestamptz + (g - 1) * %(step)s::interval
FROM generate_series(1, %(rows)s) AS g
"""


def _month(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def _owner_run(sql: str, params: Any = None) -> Any:
    with database.owner_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def _late(action: str, created_at: datetime) -> int:
    """A row written now with a time far from now, as the owner (committed): the trigger's."""
    (row,) = _owner_run(
        "INSERT INTO audit_auditlog (action, severity, description, source, user_id,"
        " user_email, user_name, user_role, ip_address, user_agent, request_path,"
        " request_method, request_id, entity_type, entity_id, metadata, error_message,"
        " error_stack, created_at) VALUES (%s, 'INFO', 'late', 'SYSTEM', 1, '', '', '',"
        " NULL, '', '', '', 'late', 'Order', '7', '{}', '', '', %s) RETURNING id",
        [action, created_at],
    )
    return row[0]


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    """MONTHS months of rows, one every STEP, written by the owner in time order as a trail
    written live holds them (the late-row trigger paused, as the benchmarks fill), into months
    created for them; then three late rows with the trigger on: a spooled row replayed three
    months after it happened, one of 400 days ago, and a writer whose clock ran two hours ahead.
    Committed (module scope), and removed with the months made for it at the end."""
    now = timezone.now()
    start = now - timedelta(days=30 * MONTHS)
    rows = int((now - timedelta(hours=2) - start) / STEP)
    made: list[date] = []
    with django_db_blocker.unblock(), db_deadline.lifted():
        month = _month(start)
        while month < _month(now):
            if _owner_run("SELECT to_regclass(%s)", [partitions.month_table(month)])[0][0] is None:
                _owner_run("SELECT audit_create_month(%s)", [month])
                made.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        _owner_run(timeline.PAUSE_LATE)
        try:
            _owner_run(FILL, {"actions": ACTIONS, "start": start, "step": STEP, "rows": rows})
        finally:
            _owner_run(timeline.RESUME_LATE)
        late = [
            _late("PAYMENT_RECEIVED", now - timedelta(days=90)),  # a spooled row, replayed
            _late("LOGIN", now - timedelta(days=400)),
            _late("SYSTEM_ERROR", now + timedelta(hours=2)),  # a clock two hours ahead
        ]
        _owner_run("ANALYZE audit_auditlog")
        timeline.forget()
    yield {"now": now, "late": late, "start": start, "months": MONTHS}
    with (
        django_db_blocker.unblock(),
        db_deadline.lifted(),
        transaction.atomic(using=database.owner_connection().alias),
    ):
        _owner_run(database.truncate_guards("DISABLE"))
        _owner_run("TRUNCATE audit_auditlog, audit_late_row")
        _owner_run(database.truncate_guards("ENABLE ALWAYS"))
        for month in made:
            _owner_run(
                f"DROP TABLE {partitions.month_table(month)}, "
                + ", ".join(partitions.leaf_table(month, c) for c in retention.CLASSES)
            )
    timeline.forget()
