"""What one Prometheus scrape of /metrics costs at 1 million audit rows.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/metrics_scrape.py

Creates (and drops) its own test database from DATABASE_URL's name and fills the audit log as
bench/audit_feed.py does (30 days, ids growing with time). Then times full GET /metrics requests
through Django, the health report's cache cleared before each (the worst case; Prometheus
scrapes less often than HEALTH_CACHE_SECONDS) and kept (what a second worker scraped within 5 s
would cost), and prints p50 and p95 of BENCH_RUNS (default 40) scrapes and the queries of one:

  * nothing rolled up yet (the first scrapes after deploying on a big trail): the audit counts
    are one live GROUP BY over every row;
  * the one scrape that rolls the trail up;
  * steady state: rolled up, with an hour of new rows (BENCH_NEW_ROWS, default 3,400: 8 % of the
    rows in the last 24 h) counted live above the mark;
  * beside them, the GROUP BY over the whole table that the roll-up saves.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("METRICS_TOKEN", "bench-metrics-token-0123456789")

# Imported first: it sets Django up (the same settings and fill as bench/audit_feed.py).
from audit_feed import fill_to
from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.test import Client
from django.test.utils import (
    CaptureQueriesContext,
    setup_databases,
    teardown_databases,
)

RUNS = int(os.environ.get("BENCH_RUNS", "40"))
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
NEW_ROWS = int(os.environ.get("BENCH_NEW_ROWS", "3400"))

NEW_ROWS_SQL = """
INSERT INTO audit_auditlog (action, severity, description, source, user_email, user_name,
    user_role, user_agent, request_path, request_method, request_id, entity_type, entity_id,
    metadata, error_message, error_stack, created_at)
SELECT (ARRAY['LOGIN','LEAD_UPDATED','LEAD_CREATED','PAYMENT_RECEIVED'])[1 + g %% 4],
    CASE WHEN g %% 25 = 0 THEN 'ERROR' ELSE 'INFO' END, 'new row', 'REQUEST', '', '', '', '',
    '', '', '', '', '', '{}'::jsonb, '', '', now()
FROM generate_series(1, %s) AS g
"""


def scrape(client: Client, *, cached: bool) -> tuple[float, int, int]:
    """One full request: milliseconds, queries on the default connection, on all of them."""
    from monitoring.checks import reset_health_cache

    if not cached:
        reset_health_cache()
    captures = [CaptureQueriesContext(connections[alias]) for alias in connections]
    for capture in captures:
        capture.__enter__()
    t0 = time.perf_counter()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    elapsed = (time.perf_counter() - t0) * 1000
    for capture in captures:
        capture.__exit__(None, None, None)
    # As Django's handler does at the end of a request: the health connection is closed.
    close_old_connections()
    assert response.status_code == 200, response.status_code
    assert b"planbeta_metrics_database_up 1.0" in response.content
    own = sum(len(c.captured_queries) for c in captures if c.connection.alias == "default")
    return elapsed, own, sum(len(c.captured_queries) for c in captures)


def series(client: Client, *, cached: bool) -> dict[str, float]:
    for _ in range(3):  # warm-up
        scrape(client, cached=cached)
    samples = [scrape(client, cached=cached) for _ in range(RUNS)]
    times = sorted(s[0] for s in samples)
    return {
        "p50": statistics.median(times),
        "p95": times[max(0, int(len(times) * 0.95) - 1)],
        "own queries": samples[-1][1],
        "all queries": samples[-1][2],
    }


def group_by_everything_ms() -> float:
    times = []
    for _ in range(5):
        with connection.cursor() as cursor:
            t0 = time.perf_counter()
            cursor.execute(
                "SELECT action, severity, COUNT(*) FROM audit_auditlog GROUP BY action, severity"
            )
            cursor.fetchall()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.utils import timezone

        from monitoring.metrics import advance_audit_counts
        from monitoring.models import AuditCountMark
        from monitoring.snapshots import ended_before

        client = Client(HTTP_HOST="127.0.0.1")
        print(f"{ROWS:,} audit rows")
        fill_to(ROWS, timezone.now())
        results = {}

        # No mark has moved: every row is counted live.
        settings.MONITORING_AUDIT_ROLLUP_SECONDS = 10**9
        results["nothing rolled up, health uncached"] = series(client, cached=False)

        # Roll up to the head; the scrape that does it is timed on its own.
        settings.MONITORING_AUDIT_ROLLUP_SECONDS = 0
        settings.MONITORING_AUDIT_SETTLE_SECONDS = 0
        advance_audit_counts()  # notes the transaction id: the next scrape moves the mark
        # ...once every older transaction on the server has ended (other databases' too).
        xmax = AuditCountMark.objects.get().candidate_xmax
        while not ended_before(xmax):
            time.sleep(0.05)
        t0 = time.perf_counter()
        scrape(client, cached=False)
        rollup_ms = (time.perf_counter() - t0) * 1000
        assert AuditCountMark.objects.get().counted_to_id >= ROWS, "the mark did not move"

        settings.MONITORING_AUDIT_ROLLUP_SECONDS = 10**9
        with connection.cursor() as cursor:
            cursor.execute(NEW_ROWS_SQL, [NEW_ROWS])
            cursor.execute("VACUUM ANALYZE audit_auditlog")
        results[f"rolled up + {NEW_ROWS:,} live, health uncached"] = series(client, cached=False)
        results[f"rolled up + {NEW_ROWS:,} live, health cached"] = series(client, cached=True)
        full = group_by_everything_ms()

        print(f"\nGET /metrics, {RUNS} scrapes each, full request through Django")
        print(f"  {'':<44} {'p50':>9} {'p95':>9}  {'queries: ours':>13}  {'all':>4}")
        for label, r in results.items():
            print(
                f"  {label:<44} {r['p50']:7.2f} ms {r['p95']:7.2f} ms"
                f"  {r['own queries']:>13}  {r['all queries']:>4}"
            )
        print(f"  {f'the scrape that rolls {ROWS:,} rows up (once)':<44} {rollup_ms:7.2f} ms")
        steady = results[f"rolled up + {NEW_ROWS:,} live, health uncached"]["p50"]
        first = results["nothing rolled up, health uncached"]["p50"]
        print(f"\n  GROUP BY over the whole table alone: {full:.2f} ms")
        print(f"  steady scrape vs nothing rolled up: {steady:.2f} ms vs {first:.2f} ms")
        print(f"  ratio (nothing rolled up / steady): {first / steady:.1f}x")
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
