"""The feed's reads by id on the partitioned trail (24 months populated) against one plain table.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_partitions.py

Creates (and drops) its own test database from DATABASE_URL's name and migrates it (the trail
partitioned by month and class, audit.partitions), creates the 24 months before this one, fills
BENCH_ROWS rows (default 1 million) spread evenly over those 24 months with ids growing with
time, then copies them into `bench_unpartitioned`: one plain table with the same columns, the
models' indexes and a primary key on id, as the trail was before migration 0008. Both are
VACUUM ANALYZEd.

Each query below runs on both tables, alternately, BENCH_RUNS times (default 50) after a
warm-up; the figures are medians of the client-side time (planning, execution and fetching,
through psycopg) and the ratio partitioned / plain. The plan of each partitioned query is read
with EXPLAIN (ANALYZE): the plan's scan nodes, whether any is a sequential scan, and how many
leaves were actually read. The reads by id walk every leaf's index (a Merge Append over them):
that is the price of partitioning by time while the feed pages by id.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit import retention, timeline  # noqa: E402
from audit.models import AuditLog  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "50"))
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
MONTHS = 24
PLAIN = "bench_unpartitioned"
CHUNK = 100_000
COLUMNS = "id, action, severity, description, user_email, entity_type, entity_id, created_at"

FILL_SQL = """
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    user_agent, request_path, request_method, request_id, entity_type, entity_id, metadata,
    error_message, error_stack, created_at
)
SELECT
    (ARRAY['LOGIN', 'LEAD_UPDATED', 'LEAD_CREATED', 'PAYMENT_RECEIVED', 'INVOICE_SENT',
           'SYSTEM_ERROR', 'DATA_ACCESSED', 'EMAIL_SENT'])[1 + (g %% 8)],
    CASE WHEN g %% 25 = 0 THEN 'ERROR' ELSE 'INFO' END,
    'Row ' || g, 'REQUEST', 1 + g %% 7, 'staff' || (g %% 7) || '@planbeta.example',
    'Staff', 'MARKETING', 'bench', '/api/leads/' || g, 'PATCH', md5(g::text), 'Lead',
    (g %% 5000)::text, '{}'::jsonb, '', '',
    %(start)s::timestamptz + (g::float8 / %(total)s) * (%(stop)s::timestamptz - %(start)s)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""

PLAIN_INDEXES = [
    f"ALTER TABLE {PLAIN} ADD PRIMARY KEY (id)",
    f"CREATE INDEX ON {PLAIN} (created_at) INCLUDE (severity, action)",
    f"CREATE INDEX ON {PLAIN} (id) WHERE severity IN ('ERROR', 'CRITICAL')",
    f"CREATE INDEX ON {PLAIN} (action, id DESC)",
    f"CREATE INDEX ON {PLAIN} (entity_type, entity_id, id DESC)",
    f"CREATE INDEX ON {PLAIN} (user_id, id DESC)",
    f"CREATE INDEX ON {PLAIN} (request_id)",
    f"CREATE UNIQUE INDEX ON {PLAIN} (spool_id) WHERE spool_id IS NOT NULL",
]


def queries(newest: int) -> list[tuple[str, str, list]]:
    return [
        (
            "feed, first page (50 newest)",
            f"SELECT {COLUMNS} FROM {{t}} ORDER BY id DESC LIMIT 50",
            [],
        ),
        (
            "dashboard poll: after=<newest-100>, 200",
            f"SELECT {COLUMNS} FROM {{t}} WHERE id > %s ORDER BY id LIMIT 200",
            [newest - 100],
        ),
        (
            "older page: before=<a year back>, 50",
            f"SELECT {COLUMNS} FROM {{t}} WHERE id < %s ORDER BY id DESC LIMIT 50",
            [newest // 2],
        ),
        (
            "errors view, first page",
            f"SELECT {COLUMNS} FROM {{t}} WHERE severity IN ('ERROR', 'CRITICAL')"
            " ORDER BY id DESC LIMIT 50",
            [],
        ),
        ("one row by id", f"SELECT {COLUMNS} FROM {{t}} WHERE id = %s", [newest // 3]),
    ]


def fill() -> int:
    now = timezone.now()
    this_month = retention.month_start(now.date())
    first_month = retention.add_months(this_month, -MONTHS)
    with connection.cursor() as cursor:
        for i in range(MONTHS):
            cursor.execute("SELECT audit_create_month(%s)", [retention.add_months(first_month, i)])
        start, stop = (
            f"{first_month.isoformat()} 00:00:00+00",
            f"{this_month.isoformat()} 00:00:00+00",
        )
        started = time.perf_counter()
        # Past times written now, in time order: on time rows, not late ones (audit.timeline).
        cursor.execute(timeline.PAUSE_LATE)
        for first in range(1, ROWS + 1, CHUNK):
            last = min(first + CHUNK - 1, ROWS)
            cursor.execute(
                FILL_SQL,
                {"first": first, "last": last, "total": ROWS, "start": start, "stop": stop},
            )
            sys.stderr.write(
                f"\r  filled {last:>9,}/{ROWS:,} ({time.perf_counter() - started:.0f} s)"
            )
        sys.stderr.write("\n")
        cursor.execute(timeline.RESUME_LATE)
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE audit_auditlog INCLUDING DEFAULTS)")
        cursor.execute(f"INSERT INTO {PLAIN} SELECT * FROM audit_auditlog")
        for statement in PLAIN_INDEXES:
            cursor.execute(statement)
        cursor.execute("SELECT max(id) FROM audit_auditlog")
        newest = cursor.fetchone()[0]
    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    raw.execute("SET statement_timeout = 0")  # the app's limit is for requests, not VACUUM
    raw.execute("VACUUM ANALYZE audit_auditlog")
    raw.execute(f"VACUUM ANALYZE {PLAIN}")
    return newest


def timed(cursor, sql: str, params: list) -> float:
    started = time.perf_counter()
    cursor.execute(sql, params)
    cursor.fetchall()
    return (time.perf_counter() - started) * 1000


def plan_of(cursor, sql: str, params: list) -> str:
    cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples > 0")
    filled = {name for (name,) in cursor.fetchall()}
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
    plan = cursor.fetchone()[0][0]
    scans: dict[str, int] = {}
    seq_on_rows: list[str] = []

    def walk(node: dict) -> None:
        kind = node["Node Type"]
        if "Scan" in kind:
            scans[kind] = scans.get(kind, 0) + 1
            if kind == "Seq Scan" and node.get("Relation Name") in filled:
                seq_on_rows.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    kinds = ", ".join(f"{n} x {k}" for k, n in sorted(scans.items()))
    # The planner may scan an empty leaf (a month ahead) sequentially: it has nothing to read.
    seq = (
        f"sequential scans of {len(seq_on_rows)} leaves with rows (e.g. {seq_on_rows[0]})"
        if seq_on_rows
        else "no sequential scan of a leaf with rows"
    )
    return (
        f"{plan['Plan']['Node Type']} over {kinds}; {seq};"
        f" planning {plan['Planning Time']:.2f} ms, execution {plan['Execution Time']:.2f} ms"
    )


def timed_prepared(raw, sql: str, params: list) -> float:
    # A server-side prepared statement: after a few runs PostgreSQL keeps a generic plan and
    # prunes at execution, so the planning of every leaf is paid once, not per query.
    started = time.perf_counter()
    raw.execute(sql, params, prepare=True).fetchall()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        newest = fill()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE c.relkind = 'r'"
            )
            leaves = cursor.fetchone()[0]
            print(
                f"{AuditLog.objects.count():,} rows over {MONTHS} months; the partitioned trail"
                f" ({leaves} leaves: {MONTHS} months filled and the migration's months ahead,"
                f" 4 classes each, and the DEFAULT) against {PLAIN} (one table);"
                f" median of {RUNS} runs, client-side ms. 'prepared': the partitioned query as a"
                " server-side prepared statement (generic plan)."
            )
            print(
                f"{'query':<42} {'partitioned':>12} {'plain':>8} {'ratio':>6}"
                f" {'prepared':>9} {'ratio':>6}"
            )
            raw = connection.connection
            for label, template, params in queries(newest):
                partitioned_sql, plain_sql = (
                    template.format(t="audit_auditlog"),
                    template.format(t=PLAIN),
                )
                for _ in range(5):
                    timed(cursor, partitioned_sql, params)
                    timed(cursor, plain_sql, params)
                    timed_prepared(raw, partitioned_sql, params)
                parts, plains, prepared = [], [], []
                for _ in range(RUNS):
                    parts.append(timed(cursor, partitioned_sql, params))
                    plains.append(timed(cursor, plain_sql, params))
                    prepared.append(timed_prepared(raw, partitioned_sql, params))
                p, q = statistics.median(parts), statistics.median(plains)
                r = statistics.median(prepared)
                print(f"{label:<42} {p:>12.2f} {q:>8.2f} {p / q:>6.1f} {r:>9.2f} {r / q:>6.1f}")
                print(f"    plan: {plan_of(cursor, partitioned_sql, params)}")
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
