"""Does a read grow with the trail? Every read of the audit log, health and alerting at 1 million
and at 10 million audit rows, side by side, with the growth ratio.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/scale.py [--rows 1M,10M] [--reuse] [--keep] [--only SUBSTRING] [--runs N]
      [--prefix NAME]

For each size it creates a database of its own, named after DATABASE_URL's (`planbeta_bench_1m`,
`planbeta_bench_10m`, …, on its server, so that two checkouts can run it side by side; `--prefix`
names them otherwise), migrates it as the owner (`manage.py migrate`, as the suite does) and fills
it with SQL (`INSERT … SELECT … FROM generate_series`, a million rows per statement, the fill time
printed). `--reuse` keeps a database that is already filled to its size (migrated again: a new
migration's tables are made); `--keep` leaves the databases behind (they are dropped at the end
otherwise); `--rows 100M` works too (about 40 GB of disk: check `df -h`).

The data is one school at a steady 5,476 audit rows a day, so 10 million rows are five years and
1 million half a year: the last hour and the last day hold the same rows in both, only history
grows. Ids grow with time as in the append-only log. Actions in the mix of a school day (logins,
lead edits, personal data viewed, invoices, payments, e-mails), severities by action (a refused
login is a WARNING, a failed e-mail or API call an ERROR, 2 % of money operations fail as CRITICAL;
about 2 % of the rows are errors). Entities point at real rows: leads (200 a day), their
invoices (50), students (25) and payments (37.5), each touched while it is recent; 20 staff as
users; request ids shared by the rows of one request.

Then, warm, the median of `--runs` runs (default 15, after 2 untimed) of each read, the sizes
taking turns run by run so that both see the same machine: full requests through Django's test
client (middleware, session, view, JSON) for the audit-log API, its export, the admin, the
dashboard, health, /status and /metrics; the alert rules and reconciliation called directly; and
a few real HTTP requests through one gunicorn worker per database. A read is OK when the larger
size takes at most 1.3 times as long as the smaller (under 5 ms both, a ratio is noise: OK).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("HEALTH_CHECK_TOKEN", "bench-health-token-0123456789")
os.environ.setdefault("METRICS_TOKEN", "bench-metrics-token-0123456789")
# The bench asks far more often than a person or a monitor would; limits would answer 429.
for _limit in ("API_RATE_LIMIT_PER_TOKEN", "API_RATE_LIMIT_PER_ADDRESS", "API_RATE_LIMIT_PROBES"):
    os.environ[_limit] = ""

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

# A health answer of 503 and the mismatches of made-up money rows are measured, not news.
for _logger in ("django.request", "monitoring.reconciliation"):
    logging.getLogger(_logger).setLevel(logging.CRITICAL)

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import close_old_connections, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit import timeline  # noqa: E402

ROWS_PER_DAY = 5476
CHUNK = 1_000_000
OK_RATIO = 1.3
NOISE_MS = 5.0
FOUNDER_ID = 1
STAFF = 20

# A school day's 5,476 rows by action: 200 new leads, a quarter of them invoiced, half of those
# converted (with a first payment; every other student pays a second time), and around them the
# staff's edits, views of personal data, logins and e-mails, and a few failures. The business
# rows below follow the same counts, so the entity filters find real rows.
MIX = [
    ("LEAD_UPDATED", 2700),
    ("DATA_ACCESSED", 1500),
    ("LOGIN", 300),
    ("LEAD_CREATED", 200),
    ("LOGOUT", 150),
    ("EMAIL_SENT", 120),
    ("API_ERROR", 100),
    ("INVOICE_GENERATED", 50),
    ("INVOICE_SENT", 45),
    ("LOGIN_FAILED", 40),
    ("PAYMENT_RECEIVED", 38),
    ("LEAD_TO_STUDENT_CONVERSION", 25),
    ("STUDENT_CREATED", 25),
    ("LEAD_CONVERTED", 25),
    ("RECONCILIATION", 24),
    ("SYSTEM_ERROR", 15),
    ("INVOICE_UPDATED", 10),
    ("EMAIL_FAILED", 5),
    ("LEAD_DELETED", 5),
    ("INVOICE_CANCELLED", 2),
    ("DATABASE_ERROR", 2),
    ("USER_UPDATED", 1),
]
LEADS_PER_DAY = 200

AUDIT_SQL = """
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    ip_address, user_agent, request_path, request_method, request_id, entity_type, entity_id,
    metadata, error_message, error_stack, created_at
)
SELECT
    a.action,
    CASE
        WHEN a.action = 'LOGIN_FAILED' THEN 'WARNING'
        WHEN a.action IN ('EMAIL_FAILED', 'API_ERROR') THEN 'ERROR'
        WHEN a.action = 'SYSTEM_ERROR' THEN CASE WHEN a.r2 < 0.2 THEN 'CRITICAL' ELSE 'ERROR' END
        WHEN a.action = 'DATABASE_ERROR' THEN 'CRITICAL'
        WHEN a.money_failed THEN 'CRITICAL'
        ELSE 'INFO'
    END,
    initcap(replace(lower(a.action), '_', ' ')) || ' (bench)',
    CASE WHEN a.user_id IS NULL THEN 'TASK' ELSE 'REQUEST' END,
    a.user_id,
    CASE WHEN a.user_id IS NULL THEN '' ELSE 'staff' || a.user_id || '@planbeta.example' END,
    CASE WHEN a.user_id IS NULL THEN '' ELSE 'Staff ' || a.user_id END,
    CASE WHEN a.user_id IS NULL THEN '' WHEN a.user_id <= 3 THEN 'FOUNDER' ELSE 'MARKETING' END,
    CASE WHEN a.user_id IS NULL THEN NULL
         ELSE ('10.20.' || (a.user_id %% 4) || '.' || (10 + a.user_id))::inet END,
    CASE WHEN a.user_id IS NULL THEN '' ELSE 'Mozilla/5.0 (X11; Linux x86_64) bench' END,
    CASE WHEN a.user_id IS NULL OR a.entity_type = '' THEN ''
         ELSE '/api/' || lower(a.entity_type) || 's/' || a.entity_id END,
    CASE WHEN a.user_id IS NULL THEN '' ELSE 'POST' END,
    -- a request writes about three rows
    md5((a.g / 3)::text),
    a.entity_type,
    a.entity_id,
    CASE WHEN a.action LIKE '%%UPDATED'
         THEN '{"changes": {"status": {"before": "NEW", "after": "CONTACTED"}}}'::jsonb
         ELSE '{}'::jsonb END,
    CASE WHEN a.action IN ('EMAIL_FAILED', 'API_ERROR', 'SYSTEM_ERROR', 'DATABASE_ERROR')
              OR a.money_failed
         THEN 'RuntimeError: bench failure' ELSE '' END,
    '',
    %(now)s::timestamptz - (%(total)s - a.g) * %(step)s * interval '1 second'
-- Computed in stages, each kept as it is by OFFSET 0: a flattened subquery would evaluate its
-- expressions again wherever the outer query names a column (ten times slower).
FROM (
    SELECT s.g, s.r2, s.action, s.entity_type,
        s.action IN ('PAYMENT_RECEIVED', 'LEAD_TO_STUDENT_CONVERSION') AND s.r2 < 0.02
            AS money_failed,
        CASE s.entity_type
            WHEN 'Lead' THEN s.lead::text
            WHEN 'User' THEN (1 + s.g %% %(staff)s)::text
            WHEN 'Invoice' THEN greatest(1, s.lead / 4)::text
            WHEN 'Student' THEN greatest(1, s.lead / 8)::text
            WHEN 'Payment' THEN greatest(1, (s.lead * 3) / 16)::text
            ELSE ''
        END AS entity_id,
        CASE WHEN s.action IN ('EMAIL_SENT', 'EMAIL_FAILED', 'RECONCILIATION', 'SYSTEM_ERROR')
             THEN NULL ELSE 1 + (s.g * 7 + floor(s.r2 * 3)::bigint) %% %(staff)s END AS user_id
    FROM (
        SELECT t.g, t.r2, t.lead, m.action,
            CASE
                WHEN m.action LIKE 'LEAD%%' THEN 'Lead'
                WHEN m.action IN ('LOGIN', 'LOGOUT', 'USER_UPDATED') THEN 'User'
                WHEN m.action = 'STUDENT_CREATED' THEN 'Student'
                WHEN m.action = 'PAYMENT_RECEIVED' THEN 'Payment'
                WHEN m.action LIKE 'INVOICE%%' OR m.action LIKE 'EMAIL%%'
                     OR m.action = 'LEAD_TO_STUDENT_CONVERSION' THEN 'Invoice'
                WHEN m.action = 'DATA_ACCESSED'
                    THEN (ARRAY['Lead', 'Lead', 'Student', 'Invoice'])[1 + (t.g %% 4)::int]
                ELSE ''
            END AS entity_type
        FROM (
            -- the lead of this moment: the newest few hundred are the ones staff work on,
            -- older ones come back now and then
            SELECT g, random() AS r1, random() AS r2,
                greatest(1, least(%(leads)s, ceil(g::float8 * %(leads)s / %(total)s)::bigint
                    - floor(power(random(), 2) * 400)::bigint)) AS lead
            FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
            OFFSET 0
        ) t
        JOIN bench_mix m ON m.slot = floor(t.r1 * %(n_actions)s)::int
        OFFSET 0
    ) s
    OFFSET 0
) a
"""

# Business rows: lead n was created at the time its audit rows say; every 4th lead has an
# invoice (invoice i for lead 4i), every other invoice converted into a student (student s for
# invoice 2s, lead 8s), and students pay once or twice (3 payments per 2 students).
BUSINESS_SQL = [
    """INSERT INTO accounts_user (id, password, email, name, role, is_active, date_joined,
        last_login)
    SELECT g, '!', 'staff' || g || '@planbeta.example', 'Staff ' || g,
        CASE WHEN g <= 3 THEN 'FOUNDER' WHEN g <= 15 THEN 'MARKETING' ELSE 'TEACHER' END,
        true, %(start)s, NULL
    FROM generate_series(1, %(staff)s) g""",
    "SELECT setval(pg_get_serial_sequence('accounts_user', 'id'), %(staff)s)",
    """INSERT INTO leads_lead (id, name, whatsapp, email, phone, source, status, quality,
        interested_level, notes, converted, converted_at, created_at, updated_at)
    SELECT g, 'Lead ' || g, '+9198' || lpad(g::text, 8, '0'), 'lead' || g || '@example.org', '',
        (ARRAY['META_ADS','INSTAGRAM','GOOGLE','ORGANIC','REFERRAL','OTHER'])[1 + g %% 6],
        CASE WHEN g %% 8 = 0 THEN 'CONVERTED'
             ELSE (ARRAY['NEW','CONTACTED','INTERESTED','LOST'])[1 + g %% 4] END,
        (ARRAY['HOT','WARM','COLD'])[1 + g %% 3], 'A1', '', g %% 8 = 0,
        CASE WHEN g %% 8 = 0 THEN t.at END, t.at, t.at
    FROM generate_series(1, %(leads)s) g,
        LATERAL (SELECT %(start)s::timestamptz + (g::float8 / %(leads)s) * %(span)s
            * interval '1 second' AS at) t""",
    "SELECT setval(pg_get_serial_sequence('leads_lead', 'id'), %(leads)s)",
    """INSERT INTO invoices_invoice (id, number, year, sequence, lead_id, status, currency,
        subtotal, discount, total_amount, payable_now, paid_amount, issue_date, due_date, notes,
        cancel_reason, send_token, created_at, updated_at)
    SELECT i, 'PB-BENCH-' || i, extract(year FROM l.created_at)::int, i, l.id,
        CASE WHEN i %% 2 = 0 THEN 'PAID' ELSE 'SENT' END,
        CASE WHEN i %% 5 = 0 THEN 'INR' ELSE 'EUR' END, 300, 0, 300, 300,
        CASE WHEN i %% 2 = 0 THEN 300 ELSE 0 END, l.created_at::date,
        l.created_at::date + 7, '', '', '', l.created_at, l.created_at
    FROM generate_series(1, %(leads)s / 4) i JOIN leads_lead l ON l.id = 4 * i""",
    "SELECT setval(pg_get_serial_sequence('invoices_invoice', 'id'), greatest(1, %(leads)s / 4))",
    """INSERT INTO payments_student (id, student_code, lead_id, name, email, whatsapp, level,
        currency, total_amount, total_paid, payment_status, created_at, updated_at)
    SELECT s, 'STU-BENCH-' || s, inv.lead_id, 'Lead ' || inv.lead_id,
        'lead' || inv.lead_id || '@example.org', '+9198' || lpad(inv.lead_id::text, 8, '0'),
        'A1', inv.currency, 300, 300, 'PAID', inv.created_at, inv.created_at
    FROM generate_series(1, %(leads)s / 8) s JOIN invoices_invoice inv ON inv.id = 2 * s""",
    "SELECT setval(pg_get_serial_sequence('payments_student', 'id'), greatest(1, %(leads)s / 8))",
    """INSERT INTO payments_payment (student_id, invoice_id, amount, currency, method,
        transaction_id, status, paid_at, paid_on, idempotency_key, created_at)
    SELECT st.id, 2 * st.id, CASE WHEN st.id %% 2 = 0 THEN 150 ELSE 300 END, st.currency, 'UPI',
        '', 'COMPLETED', st.created_at + k * interval '30 days',
        (st.created_at + k * interval '30 days')::date, 'bench-' || st.id || '-' || k,
        st.created_at + k * interval '30 days'
    FROM payments_student st, generate_series(0, 1) k
    WHERE k = 0 OR st.id %% 2 = 0""",
]


# --- databases ----------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1M, 10M, 500k)")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def server_url(dbname: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + dbname))


def admin_conninfo(dbname: str = "postgres") -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + dbname))


def database_exists(dbname: str) -> bool:
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
            is not None
        )


def filled_rows(dbname: str) -> int:
    try:
        with psycopg.connect(admin_conninfo(dbname), autocommit=True) as conn:
            row = conn.execute("SELECT max(id) FROM audit_auditlog").fetchone()
            return int(row[0] or 0)
    except psycopg.Error:
        return 0


def recreate(dbname: str) -> None:
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    migrate(dbname)


def migrate(dbname: str) -> None:
    # As the suite does: migrations run as the table owner (DATABASE_URL's role).
    env = {**os.environ, "DATABASE_URL": server_url(dbname)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def drop(dbname: str) -> None:
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def fill(dbname: str, rows: int) -> float:
    """Fill one database to `rows` audit rows and its business rows; return the seconds taken."""
    days = rows / ROWS_PER_DAY
    span = days * 86400
    now = timezone.now()
    start = now - timedelta(seconds=span)
    leads = max(8, int(days * LEADS_PER_DAY))
    actions = [action for action, per_day in MIX for _ in range(per_day)]
    started = time.perf_counter()
    with psycopg.connect(admin_conninfo(dbname), autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET synchronous_commit = off")
        params = {"start": start, "span": span, "leads": leads, "staff": STAFF}
        # The mix as a table of slots, one per row of a day: a join draws an action by weight.
        conn.execute(
            "CREATE TEMP TABLE bench_mix AS SELECT (n - 1)::int AS slot, action"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS u(action, n)",
            [actions],
        )
        conn.execute("ANALYZE bench_mix")
        for sql in BUSINESS_SQL:
            conn.execute(sql, params)
        # On PostgreSQL the trail is partitioned by month (audit.partitions): the months of the
        # history come first, as they would have been created ahead in production, so that the
        # rows land in their months and not in the DEFAULT partition.
        month = start.date().replace(day=1)
        while month <= now.date():
            name = f"audit_auditlog_y{month.year}m{month.month:02d}"
            exists = conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0]
            if exists is None:  # the migration made this month and those ahead
                conn.execute("SELECT audit_create_month(%s)", [month])
            month = (month + timedelta(days=32)).replace(day=1)
        # History written today with yesterday's times is what the late-row trigger records
        # (audit.timeline); these rows are in time order, as a trail written live would be.
        conn.execute(timeline.PAUSE_LATE)
        for lo in range(1, rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, rows)
            conn.execute(
                AUDIT_SQL,
                {
                    "now": now,
                    "total": rows,
                    "step": 86400 / ROWS_PER_DAY,
                    "start": lo,
                    "stop": hi,
                    "n_actions": len(actions),
                    "leads": leads,
                    "staff": STAFF,
                },
            )
            elapsed = time.perf_counter() - started
            sys.stderr.write(
                f"\r  {dbname}: {hi:>12,}/{rows:,} audit rows ({hi / elapsed:,.0f} rows/s)"
            )
            sys.stderr.flush()
        sys.stderr.write("\n")
        conn.execute(timeline.RESUME_LATE)
        # Index-only scans need the visibility map; the planner needs statistics.
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


# --- switching Django between the databases -----------------------------------------------------


def use(dbname: str) -> None:
    """Point every alias (default, audit, health) at `dbname`; the next query reconnects."""
    from monitoring.checks import reset_health_cache

    for alias in connections:
        connections[alias].close()
        connections[alias].settings_dict["NAME"] = dbname
    reset_health_cache()


@dataclass
class Target:
    rows: int
    dbname: str
    client: Client
    facts: dict[str, Any]


def prepare(dbname: str, rows: int) -> Target:
    """The founder's session, a few ids the reads ask for, and the /metrics roll-up done."""
    from accounts.models import User
    from audit import presence
    from audit.models import AuditLog
    from monitoring import metrics, money_counts, snapshots

    use(dbname)
    founder = User.objects.get(pk=FOUNDER_ID)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(founder)
    newest = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    lead_id = (
        AuditLog.objects.filter(entity_type="Lead")
        .order_by("-id")
        .values_list("entity_id", flat=True)
        .first()
    )
    # The roll-up of /metrics' audit counts, as an hour of scrapes would have done it. A first
    # roll-up of 10 million rows needs more than the web's statement timeout and call deadline
    # (see README), and nobody but this process writes to the bench's database, so the wait for
    # every older transaction of the server (other databases' included) is skipped.
    with connections["default"].cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
    connections["default"].settings_dict["CALL_DEADLINE"] = 0
    old = settings.MONITORING_AUDIT_SETTLE_SECONDS, settings.MONITORING_AUDIT_ROLLUP_SECONDS
    settings.MONITORING_AUDIT_SETTLE_SECONDS = settings.MONITORING_AUDIT_ROLLUP_SECONDS = 0
    ended_before = snapshots.ended_before
    snapshots.ended_before = lambda xmax: True
    try:
        moved = any(metrics.advance_audit_counts() for _ in range(4))
        assert moved, "the audit counts of /metrics were not rolled up"
        moved = any(money_counts.advance_money_counts() for _ in range(4))
        assert moved, "the payments and students of /metrics were not rolled up"
        # The months of each filter and search term (audit.presence), as beat's fold would have
        # kept them: up to the newest row, which here is the chain's horizon (no sealer runs).
        presence_horizon, presence._horizon = presence._horizon, lambda using: newest
        settings.AUDIT_PRESENCE_FOLD_IDS, fold_ids = 1_000_000, settings.AUDIT_PRESENCE_FOLD_IDS
        try:
            started = time.perf_counter()
            while presence.fold_batch().more:
                pass
            folded = time.perf_counter() - started
            sys.stderr.write(f"  {dbname}: the presence fold took {folded:.1f} s\n")
        finally:
            presence._horizon, settings.AUDIT_PRESENCE_FOLD_IDS = presence_horizon, fold_ids
    finally:
        settings.MONITORING_AUDIT_SETTLE_SECONDS, settings.MONITORING_AUDIT_ROLLUP_SECONDS = old
        snapshots.ended_before = ended_before
        connections["default"].settings_dict["CALL_DEADLINE"] = settings.DB_CALL_DEADLINE
    connections["default"].close()
    facts = {
        "newest": newest,
        "lead": lead_id,
        "deep": 1_000,  # ids near the start: the oldest page of history
        "user": 5,
        "since": quote((timezone.now() - timedelta(hours=1)).isoformat()),
    }
    return Target(rows=rows, dbname=dbname, client=client, facts=facts)


# --- the reads ----------------------------------------------------------------------------------


@dataclass
class Read:
    name: str
    call: Callable[[Target], Any]
    before: Callable[[Target], Any] | None = None
    # Why this one grows with the data by design (then it is shown, not judged).
    grows: str = ""


def get(path: str, *, expect: tuple[int, ...] = (200,), **headers: str) -> Callable[[Target], Any]:
    def call(target: Target) -> None:
        response = target.client.get(path.format(**target.facts), **headers)
        # What Django's handler does at the end of a request (the test client skips it).
        close_old_connections()
        assert response.status_code in expect, (path, response.status_code)
        if response.streaming:
            raise AssertionError("use export() for a streamed answer")

    return call


def export(target: Target) -> None:
    response = target.client.get(
        "/api/system/audit-logs/export?format=jsonl", HTTP_ACCEPT="application/x-ndjson"
    )
    assert response.status_code == 200, response.status_code
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        if lines >= 1000:
            break
    response.close()
    close_old_connections()
    assert lines >= 1000, lines


def rule(name: str) -> Callable[[Target], Any]:
    from alerts.rules import RULES

    check = next(r.check for r in RULES if r.name == name)
    return lambda target: check(timezone.now())


def critical_rule(target: Target) -> None:
    from alerts.services import process_critical_events

    process_critical_events(enqueue=False)


def reconcile(target: Target) -> None:
    from monitoring.reconciliation import reconcile as run

    run()


def audit_counts(target: Target) -> None:
    from monitoring.metrics import audit_event_counts

    audit_event_counts()


def money_rolled_up(target: Target) -> None:
    from monitoring.money_counts import money_counts

    money_counts()


def money_counted_whole(target: Target) -> None:
    """What /metrics read for payments and students before the roll-up: both tables whole."""
    from django.db.models import Count, Sum

    from payments.models import Payment, Student

    per_currency = Payment.objects.values("currency").annotate(n=Count("*"), total=Sum("amount"))
    list(per_currency.order_by("currency"))
    list(Student.objects.values("currency").annotate(n=Count("*")).order_by("currency"))


def cold_health(target: Target) -> None:
    from monitoring.checks import reset_health_cache

    reset_health_cache()


def warm_health(target: Target) -> None:
    from monitoring.checks import health_report

    health_report()


HEALTH_TOKEN = {"HTTP_AUTHORIZATION": f"Bearer {os.environ['HEALTH_CHECK_TOKEN']}"}
METRICS = {"HTTP_AUTHORIZATION": f"Bearer {os.environ['METRICS_TOKEN']}"}
FEED = "/api/system/audit-logs"
HEALTH_CODES = (200, 503)

READS = [
    Read("audit-logs type=all", get(FEED)),
    Read("audit-logs type=all limit=200", get(FEED + "?limit=200")),
    Read("audit-logs type=errors", get(FEED + "?type=errors")),
    Read("audit-logs severity=WARNING", get(FEED + "?severity=WARNING")),
    Read("audit-logs severity=CRITICAL", get(FEED + "?severity=CRITICAL")),
    Read("audit-logs action=PAYMENT_RECEIVED", get(FEED + "?action=PAYMENT_RECEIVED")),
    Read("audit-logs action=DATABASE_ERROR (rare)", get(FEED + "?action=DATABASE_ERROR")),
    Read("audit-logs entityType=Lead&entityId", get(FEED + "?entityType=Lead&entityId={lead}")),
    Read("audit-logs userId", get(FEED + "?userId={user}")),
    Read("audit-logs userId nobody acted as", get(FEED + "?userId=4000")),
    Read("audit-logs entity that is gone", get(FEED + "?entityType=Lead&entityId=999999999")),
    Read("audit-logs since=1h ago", get(FEED + "?since={since}")),
    Read("audit-logs after=newest-100 (poll)", get(FEED + "?after={newest}&limit=200")),
    Read(
        "audit-logs type=errors&entityType=Student", get(FEED + "?type=errors&entityType=Student")
    ),
    Read("audit-logs action&userId", get(FEED + "?action=INVOICE_SENT&userId={user}")),
    Read("audit-logs before=deep (oldest page)", get(FEED + "?before={deep}")),
    Read("audit-logs type=errors before=deep", get(FEED + "?type=errors&before={deep}")),
    Read("audit-logs userId before=deep", get(FEED + "?userId={user}&before={deep}")),
    Read("audit-logs type=stats", get(FEED + "?type=stats")),
    Read("export jsonl, first 1000 rows", export),
    Read("admin audit-log list, page 1", get("/admin/audit/auditlog/")),
    Read("admin audit-log search (e-mail)", get("/admin/audit/auditlog/?q=staff7%40planbeta")),
    Read(
        "admin audit-log search (request id)",
        get("/admin/audit/auditlog/?q=c4ca4238a0b923820dcc509a6f75849b"),
    ),
    Read("admin audit-log search (words)", get("/admin/audit/auditlog/?q=conversion")),
    Read("admin audit-log search (words nobody wrote)", get("/admin/audit/auditlog/?q=zebra")),
    Read("audit-logs q=words nobody wrote", get(FEED + "?q=zebra")),
    Read("dashboard page", get("/dashboard/activity")),
    Read(
        "health basic (cached report)", get("/api/system/health", expect=HEALTH_CODES), warm_health
    ),
    Read(
        "health detailed (cache cold)",
        get("/api/system/health", expect=HEALTH_CODES, **HEALTH_TOKEN),
        cold_health,
    ),
    Read(
        "health money (cache cold)",
        get("/api/system/health/money", expect=HEALTH_CODES, **HEALTH_TOKEN),
        cold_health,
    ),
    Read("/metrics (health cached)", get("/metrics", **METRICS), warm_health),
    Read("/metrics (health cold)", get("/metrics", **METRICS), cold_health),
    # The parts of a scrape on their own: where its time goes.
    Read("/metrics part: audit counts", audit_counts),
    Read("/metrics part: money counts (roll-up + live)", money_rolled_up),
    Read(
        "/metrics part: money counted whole (before)",
        money_counted_whole,
        grows="both tables counted at every scrape (the old way)",
    ),
    Read("/status (founder)", get("/status"), cold_health),
    Read("rule error_rate", rule("error_rate")),
    Read("rule slow_database", rule("slow_database")),
    Read("rule no_activity", rule("no_activity")),
    Read("rule health_unhealthy", rule("health_unhealthy"), cold_health),
    Read("rule heartbeat_stale", rule("heartbeat_stale")),
    Read("rule critical_event", critical_rule),
    Read("reconcile()", reconcile, grows="compares every money row"),
]


def measure(read: Read, targets: list[Target], runs: int) -> dict[int, float | str]:
    """Median ms per size; a read that fails at a size (a timeout at 10 M) is its error's name."""
    samples: dict[int, list[float]] = {t.rows: [] for t in targets}
    failed: dict[int, str] = {}
    for i in range(runs + 2):
        for target in targets:  # the sizes take turns: both see the same machine
            if target.rows in failed:
                continue
            use(target.dbname)
            connections["default"].ensure_connection()
            if read.before:
                read.before(target)
            t0 = time.perf_counter()
            try:
                read.call(target)
            except Exception as exc:  # reported in the table; the other reads go on
                failed[target.rows] = type(exc).__name__
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            if i >= 2:
                samples[target.rows].append(elapsed)
    return {rows: failed.get(rows) or statistics.median(values) for rows, values in samples.items()}


# --- through gunicorn ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(dbname: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": server_url(dbname), "DB_CONN_MAX_AGE": "60"}
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "planbeta.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--no-control-socket",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/system/livez", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def http_ms(port: int, path: str, headers: dict[str, str]) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http://127.0.0.1
            response.read()
    except urllib.error.HTTPError as exc:  # a 503 of health is an answer too
        exc.read()
        if exc.code != 503:
            raise
    return (time.perf_counter() - t0) * 1000


def http_reads(targets: list[Target], runs: int) -> dict[str, dict[int, float | str]]:
    from accounts.models import ApiToken, User
    from accounts.services import api_token_issue

    servers = {}
    tokens = {}
    for target in targets:
        use(target.dbname)
        ApiToken.objects.filter(name="bench scale").delete()
        tokens[target.rows] = api_token_issue(
            user=User.objects.get(pk=FOUNDER_ID), name="bench scale"
        )
        connections["default"].close()
        servers[target.rows] = start_gunicorn(target.dbname)
    plan = {
        "HTTP health basic": ("/api/system/health", {}),
        "HTTP health detailed (health token)": (
            "/api/system/health",
            {"Authorization": HEALTH_TOKEN["HTTP_AUTHORIZATION"]},
        ),
        "HTTP /metrics": ("/metrics", {"Authorization": METRICS["HTTP_AUTHORIZATION"]}),
        "HTTP audit-logs type=errors (API token)": (FEED + "?type=errors", None),
        "HTTP audit-logs type=stats (API token)": (FEED + "?type=stats", None),
    }
    results: dict[str, dict[int, float | str]] = {}
    try:
        for name, (path, headers) in plan.items():
            samples: dict[int, list[float]] = {t.rows: [] for t in targets}
            for i in range(runs + 2):
                for target in targets:
                    h = (
                        headers
                        if headers is not None
                        else {"Authorization": f"Bearer {tokens[target.rows]}"}
                    )
                    elapsed = http_ms(servers[target.rows][1], path, h)
                    if i >= 2:
                        samples[target.rows].append(elapsed)
            results[name] = {rows: statistics.median(v) for rows, v in samples.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    return results


# --- main ---------------------------------------------------------------------------------------


def verdict(small: float | str, big: float | str) -> tuple[str, str]:
    if isinstance(small, str) or isinstance(big, str):
        return "", "FAIL"
    ratio = big / small if small > 0 else float("inf")
    ok = "OK" if ratio <= OK_RATIO or big < NOISE_MS else "FAIL"
    return f"{ratio:.2f}x", ok


def cell(value: float | str) -> str:
    return f"{value:>10.1f}" if isinstance(value, float) else f"{value[:10]:>10}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1M,10M", help="sizes, smallest first (e.g. 1M,10M,100M)")
    parser.add_argument("--reuse", action="store_true", help="keep a database already filled")
    parser.add_argument("--keep", action="store_true", help="do not drop the databases at the end")
    parser.add_argument("--only", default="", help="only reads whose name contains this")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn requests")
    parser.add_argument(
        "--prefix",
        default="",
        help="database names: PREFIX_1m, PREFIX_10m (default: DATABASE_URL's database name)",
    )
    args = parser.parse_args()
    sizes = sorted(parse_size(s) for s in args.rows.split(","))
    if connections["default"].vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server.")

    free = shutil.disk_usage("/").free
    need = sum(sizes) * 450  # bytes per audit row with its indexes, measured at 10M
    print(f"disk: {free / 1e9:.0f} GB free, about {need / 1e9:.1f} GB needed")
    if need > free * 0.8:
        sys.exit("Not enough disk for these sizes.")

    prefix = args.prefix or connections["default"].settings_dict["NAME"]
    names = {rows: f"{prefix}_{label(rows).lower()}" for rows in sizes}
    print(f"\nFill ({ROWS_PER_DAY:,} audit rows a day, {LEADS_PER_DAY} leads a day)")
    for rows, dbname in names.items():
        # A measured run adds a few rows of its own (the export's DATA_ACCESSED, a token issued).
        if args.reuse and database_exists(dbname) and rows <= filled_rows(dbname) < rows + 1000:
            migrate(dbname)  # a database filled before a new migration gets its tables
            print(f"  {label(rows):>5}: reused {dbname}")
            continue
        t0 = time.perf_counter()
        recreate(dbname)
        migrated = time.perf_counter() - t0
        seconds = fill(dbname, rows)
        print(
            f"  {label(rows):>5}: {rows / ROWS_PER_DAY / 365:.1f} years, migrate {migrated:.0f} s, "
            f"fill + VACUUM ANALYZE {seconds:.0f} s ({rows / seconds:,.0f} rows/s)"
        )
    try:
        settings.FOUNDER_ALERT_EMAILS = []
        settings.ALERT_WEBHOOK_URLS = []
        cache.clear()
        targets = [prepare(dbname, rows) for rows, dbname in names.items()]
        reads = [r for r in READS if args.only.lower() in r.name.lower()]
        results: dict[str, dict[int, float | str]] = {}
        for read in reads:
            results[read.name] = measure(read, targets, args.runs)
            sys.stderr.write(f"  measured {read.name}\n")
        if not args.no_http and (not args.only or "http" in args.only.lower()):
            results.update(http_reads(targets, args.runs))
    finally:
        connections.close_all()
        if not args.keep:
            for dbname in names.values():
                drop(dbname)

    small, big = sizes[0], sizes[-1]
    print(
        f"\nMedian of {args.runs} warm runs, ms (server time through Django's test client; "
        f"HTTP: client time through one gunicorn worker). OK: {label(big)} at most "
        f"{OK_RATIO}x {label(small)} (or under {NOISE_MS:.0f} ms)."
    )
    header = f"  {'read':<46}" + "".join(f"{label(s):>10}" for s in sizes) + "     ratio"
    print(header)
    failed = 0
    grows = {read.name: read.grows for read in READS if read.grows and read.name in results}
    for name, per_size in results.items():
        ratio, ok = verdict(per_size[small], per_size[big])
        if name in grows:
            ok = f"grows: {grows[name]}"
        failed += ok == "FAIL"
        cells = "".join(cell(per_size[s]) for s in sizes)
        print(f"  {name:<46}{cells}  {ratio:>8}  {ok}")
    print(f"\n{len(results) - failed - len(grows)} OK, {failed} FAIL, {len(grows)} not judged")


if __name__ == "__main__":
    main()
