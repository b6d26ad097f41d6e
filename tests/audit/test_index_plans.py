"""Every filter of the audit-log API, alone and combined, is answered through an index.

A table of realistic size and shape is filled with generate_series and analysed; then each
combination of filters goes through the selector the API calls (audit_log_page), and the plan of
every query it ran is read back with EXPLAIN. A sequential scan of an audit table that holds rows
fails the test: that is a read which grows with the table. The check walks every node of the plan
over any `audit_auditlog*` relation, so it holds for the plain table and for one partitioned by
month alike; an empty partition may be scanned sequentially (there is nothing to read).
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import sql

from audit import timeline
from audit.models import AuditLog
from audit.selectors import audit_log_page
from core import db_deadline
from tests import database

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ROWS = 200_000
# Deterministic (no random()): the same table every run, so the same plans. Rows 2 s apart
# (4.6 days); severities INFO 90 %, WARNING 6 %, ERROR 3.5 %, CRITICAL 0.5 %; 40 users and a
# tenth of the rows without one; entity types in a back office's proportions; a quarter of the
# descriptions say "refund".
FILL = """
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    ip_address, user_agent, request_path, request_method, request_id, entity_type, entity_id,
    metadata, error_message, error_stack, created_at
)
SELECT
    (ARRAY['LOGIN', 'LEAD_UPDATED', 'LEAD_UPDATED', 'LEAD_CREATED', 'LOGOUT',
           'INVOICE_GENERATED', 'INVOICE_SENT', 'PAYMENT_RECEIVED', 'LEAD_TO_STUDENT_CONVERSION',
           'EMAIL_SENT', 'LOGIN', 'LEAD_UPDATED', 'EMAIL_FAILED', 'API_ERROR', 'LEAD_CREATED',
           'DATA_ACCESSED'])[1 + (g * 7) %% 16],
    CASE WHEN k < 5 THEN 'CRITICAL' WHEN k < 40 THEN 'ERROR' WHEN k < 100 THEN 'WARNING'
         ELSE 'INFO' END,
    (ARRAY['Lead ', 'Invoice PB-2026-', 'Payment of EUR 134.00 for invoice ', 'Student PB-S-'])
        [1 + g %% 4] || g
        || (ARRAY[' updated by staff', ' created', ' sent to the lead', ' refund requested'])
        [1 + (g / 7) %% 4],
    'REQUEST',
    CASE WHEN g %% 10 = 0 THEN NULL ELSE 1 + g %% 40 END,
    CASE WHEN g %% 10 = 0 THEN '' ELSE 'staff' || (1 + g %% 40) || '@planbeta.example' END,
    'Staff', 'MARKETING', '10.0.0.1', 'Mozilla/5.0', '/api/leads', 'PATCH', md5(g::text),
    (ARRAY['Lead', 'Lead', 'Lead', 'Invoice', 'Invoice', 'Payment', 'Student', 'User', '', ''])
        [1 + (g * 3) %% 10],
    (g %% 5000)::text,
    '{}'::jsonb, '', '',
    %(now)s::timestamptz - (%(rows)s - g) * interval '2 seconds'
FROM generate_series(1, %(rows)s) AS g, LATERAL (SELECT (g * 37) %% 1000 AS k) AS s
"""


@pytest.fixture(scope="module")
def filled_log(django_db_setup, django_db_blocker):
    """ROWS committed audit rows, vacuumed and analysed as autovacuum keeps a real table, once for
    the module. Written by the owner (only the owner may VACUUM and ANALYZE, or TRUNCATE the trail
    again at the end); the tests read them through the application's connection."""
    now = timezone.now()
    with django_db_blocker.unblock(), db_deadline.lifted():
        owner = database.owner_connection()
        with owner.cursor() as cursor:
            # Maintenance, not a request: a busy machine may take longer than a statement may.
            cursor.execute("SET statement_timeout = 0")
            # The trigram index takes new rows into its pending list and merges them at the
            # VACUUM, as a build would: row by row the fill takes several times as long.
            cursor.execute("SET gin_pending_list_limit = '256MB'")
            # History in time order, as written live: not late rows (audit.timeline).
            cursor.execute(timeline.PAUSE_LATE)
            cursor.execute(FILL, {"now": now, "rows": ROWS})
            cursor.execute(timeline.RESUME_LATE)
            # The planner costs a GIN index by the statistics VACUUM leaves in it.
            cursor.execute("VACUUM ANALYZE audit_auditlog")
            cursor.execute("SELECT max(id) FROM audit_auditlog")
            (newest,) = cursor.fetchone()
            cursor.execute("RESET gin_pending_list_limit")
            cursor.execute("RESET statement_timeout")
    yield {"now": now, "newest": newest}
    with (
        django_db_blocker.unblock(),
        db_deadline.lifted(),
        transaction.atomic(using=owner.alias),
        owner.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL statement_timeout = 0")
        # The trail refuses TRUNCATE, the owner's too: its guards are off for this transaction.
        cursor.execute(database.truncate_guards("DISABLE"))
        cursor.execute("TRUNCATE audit_auditlog")
        cursor.execute(database.truncate_guards("ENABLE ALWAYS"))


def _combinations(now, newest) -> list[dict[str, Any]]:
    choices = {
        "errors_only": [False, True],
        "severity": [None, "ERROR"],
        "action": [None, "PAYMENT_RECEIVED"],
        "entity": [None, ("Invoice", None), ("Invoice", "42")],
        "user_id": [None, 7],
        "since": [None, now - timedelta(days=1)],
        # after: a poll (a recent cursor); before: paging back into history.
        "cursor": [None, ("after", newest - 500), ("before", newest - 50_000)],
        # A word in a quarter of the rows, and a string in a handful.
        "q": [None, "refund", "PB-S-12347"],
    }
    combos = []
    for values in itertools.product(*choices.values()):
        chosen = dict(zip(choices, values, strict=True))
        filters: dict[str, Any] = {
            "errors_only": chosen["errors_only"],
            "severity": chosen["severity"],
            "action": chosen["action"],
            "user_id": chosen["user_id"],
            "since": chosen["since"],
            "q": chosen["q"],
        }
        if chosen["entity"]:
            filters["entity_type"], filters["entity_id"] = chosen["entity"]
        if chosen["cursor"]:
            name, value = chosen["cursor"]
            filters[name] = value
        combos.append({k: v for k, v in filters.items() if v not in (None, False)})
    return combos


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every node of the plan that reads an audit_auditlog* relation."""
    found = []
    if plan.get("Relation Name", "").startswith("audit_auditlog"):
        found.append((plan["Node Type"], plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _holds_rows(relation: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT FROM ONLY {})").format(sql.Identifier(relation))
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def _sequential_scans(query: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + query)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return [rel for node, rel in _scans(plan) if node == "Seq Scan" and _holds_rows(rel)]


def _plan_text(query: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + query)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_no_filter_combination_reads_the_audit_table_sequentially(filled_log):
    combos = _combinations(filled_log["now"], filled_log["newest"])
    assert len(combos) == 2 * 2 * 2 * 3 * 2 * 2 * 3 * 3

    failures = []
    for filters in combos:
        with CaptureQueriesContext(connection) as queries:
            audit_log_page(limit=50, **filters)
        # The page, and what audit.timeline reads to bound it by time (a cursor row's time,
        # its month's first row, a wider window when the first held too few rows).
        reads = [q["sql"] for q in queries if 'FROM "audit_auditlog"' in q["sql"]]
        assert reads
        for query in reads:
            if scanned := _sequential_scans(query):
                plan = _plan_text(query)
                failures.append(f"{filters}: Seq Scan on {', '.join(scanned)}\n{plan}")

    assert failures == []


def test_the_check_sees_a_sequential_scan(filled_log):
    # The check itself can fail: a filter on a column without an index is read sequentially.
    with CaptureQueriesContext(connection) as queries:
        list(AuditLog.objects.filter(user_agent="curl").order_by("created_at")[:50])
    scanned = _sequential_scans(queries[0]["sql"])
    # The table itself, or each of its partitions that holds rows (PostgreSQL's partitioned trail).
    assert scanned
    assert all(name.startswith("audit_auditlog") for name in scanned)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"p": "20"},
        {"id__lt": "150000"},
        {"severity__exact": "CRITICAL"},
        {"q": "PAYMENT_RECEIVED"},
        {"q": "Invoice #42"},
        {"q": "staff7@PLANBETA.example"},
        {"q": "c4ca4238a0b923820dcc509a6f75849b"},  # md5('1'): the first row's request id
        {"q": "PB-S-12347"},
        {"q": "refund"},
        {"q": "refund", "severity__exact": "ERROR"},
    ],
)
def test_no_admin_list_page_reads_the_audit_table_sequentially(filled_log, founder, query):
    client = Client()
    client.force_login(founder)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/audit/auditlog/", query)
    assert response.status_code == 200
    reads = [q["sql"] for q in queries if "audit_auditlog" in q["sql"]]
    assert reads
    failures = [f"{q}\n{_plan_text(q)}" for q in reads if _sequential_scans(q)]
    assert failures == []
