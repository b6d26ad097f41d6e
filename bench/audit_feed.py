"""Server time of the activity feed's reads at 10 thousand and at 1 million audit rows.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_feed.py

Creates (and drops) its own test database from DATABASE_URL's name, migrates it, fills
audit_auditlog with generate_series (a progress bar while it fills), VACUUM ANALYZEs it, then
times full requests through Django (middleware, auth, view, JSON) for:
  * the dashboard poll:  GET /api/system/audit-logs?after=<recent id>&limit=200
  * the errors view:     GET /api/system/audit-logs?type=errors
  * the 24 h stats:      GET /api/system/audit-logs?type=stats
  * the detailed health: GET /api/system/health with the health token (cache cleared each run)
Median of BENCH_RUNS runs (default 30) after a warm-up. BENCH_ROWS overrides the sizes.

The data: ids grow with time as in a real append-only log, 30 days of history with 8 % of the
rows in the last 24 h; severities INFO 90 %, WARNING 6 %, ERROR 3.5 %, CRITICAL 0.5 %; actions
in proportions a back office sees (logins and lead updates dominate).
"""

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("HEALTH_CHECK_TOKEN", "bench-health-token-0123456789")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections, connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from audit import timeline  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
SIZES = [int(n) for n in os.environ.get("BENCH_ROWS", "10000,1000000").split(",")]
CHUNK = 50_000
DAYS = 30
RECENT_SHARE = 0.08

# (action, weight); the severity mix is drawn independently, except that a few actions are
# only ever INFO in real life, which does not matter for these reads.
ACTIONS = [
    ("LOGIN", 18),
    ("LEAD_UPDATED", 22),
    ("LEAD_CREATED", 14),
    ("LOGIN_FAILED", 5),
    ("LOGOUT", 8),
    ("INVOICE_GENERATED", 6),
    ("INVOICE_SENT", 5),
    ("INVOICE_UPDATED", 3),
    ("PAYMENT_RECEIVED", 4),
    ("LEAD_TO_STUDENT_CONVERSION", 3),
    ("STUDENT_CREATED", 3),
    ("EMAIL_SENT", 5),
    ("EMAIL_FAILED", 1),
    ("API_ERROR", 1),
    ("SYSTEM_ERROR", 1),
    ("LEAD_DELETED", 1),
]

FILL_SQL = """
WITH params AS (
    SELECT %(now)s::timestamptz AS now, %(total)s::bigint AS total
)
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    ip_address, user_agent, request_path, request_method, request_id, entity_type, entity_id,
    metadata, error_message, error_stack, created_at
)
SELECT
    (%(actions)s::text[])[1 + floor(%(weights_len)s * random())::int],
    CASE
        WHEN r < 0.005 THEN 'CRITICAL'
        WHEN r < 0.040 THEN 'ERROR'
        WHEN r < 0.100 THEN 'WARNING'
        ELSE 'INFO'
    END,
    'Lead ' || g || ' updated by staff',
    'REQUEST',
    1 + (g %% 7),
    'staff' || (g %% 7) || '@planbeta.example',
    'Staff ' || (g %% 7),
    'MARKETING',
    ('10.0.' || (g %% 250) || '.' || (g %% 199))::inet,
    'Mozilla/5.0 (bench)',
    '/api/leads/' || g,
    'PATCH',
    md5(g::text),
    'Lead',
    (g %% 5000)::text,
    jsonb_build_object('before', jsonb_build_object('status', 'NEW'),
                       'after', jsonb_build_object('status', 'CONTACTED')),
    CASE WHEN r < 0.040 THEN 'RuntimeError: bench failure' ELSE '' END,
    '',
    -- ids grow with time: the first (1 - RECENT_SHARE) of the rows cover days 30..1, the rest
    -- the last 24 hours.
    CASE
        WHEN g <= total * (1 - %(recent)s) THEN
            now - %(days)s * interval '1 day'
            + (g::float8 / (total * (1 - %(recent)s))) * %(older_days)s * interval '1 day'
        ELSE
            now - interval '1 day'
            + ((g - total * (1 - %(recent)s)) / (total * %(recent)s)) * interval '1 day'
            - interval '1 second'
    END
FROM params, generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
     LATERAL (SELECT random() + g * 0 AS r) AS rnd
"""


def progress(done: int, total: int, started: float) -> None:
    width = 40
    filled = int(width * done / total)
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(
        f"\r  filling [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,} "
        f"({rate:,.0f} rows/s)"
    )
    sys.stderr.flush()
    if done == total:
        sys.stderr.write("\n")


def fill_to(target: int, now) -> None:
    """Regenerate the table with `target` rows. TRUNCATE is allowed to the owner (see 0002)."""
    actions = [a for a, w in ACTIONS for _ in range(w)]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditlog, audit_late_row RESTART IDENTITY")
        timeline.forget()  # the ids start again
        # Past times written now, in time order: on time rows, not late ones (audit.timeline).
        cursor.execute(timeline.PAUSE_LATE)
        started = time.perf_counter()
        for start in range(1, target + 1, CHUNK):
            stop = min(start + CHUNK - 1, target)
            cursor.execute(
                FILL_SQL,
                {
                    "now": now,
                    "total": target,
                    "actions": actions,
                    "weights_len": len(actions),
                    "recent": RECENT_SHARE,
                    "days": DAYS,
                    "older_days": DAYS - 1,
                    "start": start,
                    "stop": stop,
                },
            )
            progress(stop, target, started)
        cursor.execute(timeline.RESUME_LATE)
        # Index-only scans need the visibility map; the planner needs statistics.
        cursor.execute("VACUUM ANALYZE audit_auditlog")


def median_ms(client: Client, path: str, *, headers=None, before=None, runs: int = RUNS):
    samples = []
    for i in range(runs + 3):
        if before:
            before()
        t0 = time.perf_counter()
        response = client.get(path, **(headers or {}))
        # What Django's handler does at the end of a request (the test client skips it): the
        # health checks' own connection is closed, so each health run pays for a new one.
        close_old_connections()
        elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code in (200, 503), (path, response.status_code)
        if i >= 3:  # warm-up
            samples.append(elapsed)
    return statistics.median(samples)


def explain(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + sql, params)
        lines = [row[0] for row in cursor.fetchall()]
    return "\n".join("      " + line for line in lines)


def print_plans(cursor: int, now) -> None:
    from django.db.models import Count
    from django.db.models.functions import TruncHour

    from audit.models import AuditLog

    queries = {
        "poll": AuditLog.objects.filter(id__gt=cursor).order_by("id")[:200],
        "errors": AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).order_by("-id")[:50],
        "stats": AuditLog.objects.filter(created_at__gte=now - timedelta(hours=24))
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "severity", "action")
        .annotate(n=Count("*"))
        .order_by(),
    }
    print("  plans (EXPLAIN ANALYZE):")
    for label, query in queries.items():
        sql, params = query.query.sql_with_params()
        print(f"    {label}:\n{explain(sql, params)}")


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.utils import timezone

        from accounts.models import Role, User
        from audit.models import AuditLog
        from monitoring.checks import reset_health_cache

        founder = User.objects.create_user(
            "bench-founder@planbeta.example", "bench-password-123", name="Bench", role=Role.FOUNDER
        )
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(founder)
        health_headers = {"HTTP_AUTHORIZATION": f"Bearer {settings.HEALTH_CHECK_TOKEN}"}
        url = "/api/system/audit-logs"
        results = {}
        now = timezone.now()
        for size in SIZES:
            print(f"\n{size:,} rows")
            fill_to(size, now)
            newest = AuditLog.objects.order_by("-id").values_list("id", flat=True).first()
            cursor = newest - 20
            results[size] = {
                "poll (after=recent, limit=200)": median_ms(
                    client, f"{url}?after={cursor}&limit=200"
                ),
                "errors view (type=errors, limit=50)": median_ms(client, f"{url}?type=errors"),
                "24 h stats (type=stats)": median_ms(client, f"{url}?type=stats"),
                "detailed health (uncached)": median_ms(
                    client, "/api/system/health", headers=health_headers, before=reset_health_cache
                ),
            }
            for label, ms in results[size].items():
                print(f"  {label:<40} {ms:8.2f} ms")
            if size == SIZES[-1]:
                print_plans(cursor, now)

        if len(SIZES) >= 2:
            small, big = SIZES[0], SIZES[-1]
            print(f"\nSummary ({RUNS} runs each, median, full request through Django)")
            print(f"  {'':<40} {small:>12,} {big:>12,}   target at {big:,}")
            targets = {
                "poll (after=recent, limit=200)": 20,
                "errors view (type=errors, limit=50)": 20,
                "24 h stats (type=stats)": 100,
                "detailed health (uncached)": 100,
            }
            for label, target in targets.items():
                a, b = results[small][label], results[big][label]
                verdict = "ok" if b < target else "MISSED"
                print(f"  {label:<40} {a:9.2f} ms {b:9.2f} ms   < {target} ms {verdict}")
            ratio = results[big]["poll (after=recent, limit=200)"] / max(
                results[small]["poll (after=recent, limit=200)"], 1e-9
            )
            print(f"  poll {big:,} / {small:,} = {ratio:.2f}x (target <= 1.5x)")
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
