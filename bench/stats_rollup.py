"""The 24 h stats (with the hourly chart), the error rate and the activity counts: counted over
the rows of their window (as before) against read from the minute counts (audit.rollup), at
5 k, 82 k and 800 k audit rows a day.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/stats_rollup.py

Creates (and drops) its own test database from DATABASE_URL's name. For each daily volume
(BENCH_PER_DAY, default 5000,82000,800000) it fills audit_auditlog with BENCH_DAYS (default 2)
days of rows by generate_series, ids growing with time, the action and severity mix of
bench/audit_feed.py; moves the chain's horizon over them (the sealer would, a few seconds after
they commit; sealing 1.6 M rows is not what is measured here), folds them (timed), then writes
45 seconds' worth of rows that stay above the fold mark (the tail a read adds live: the sealer's
lag plus one fold interval) and VACUUM ANALYZEs.

Then, side by side in one run (called alternately, so both see the same load), the median of
BENCH_RUNS (default 25) calls after a warm-up, of the selectors themselves (server round trips
and Python, no HTTP), and the rollup's own CPU time in this process:
  * raw:    the former queries, one grouped COUNT over the window's rows (covering index);
  * rollup: audit.selectors as they are now (the fold's mark, then one UNION ALL);
and checks on every volume that both give the same numbers. Last the growth from the smallest
to the largest volume (largest / smallest; 1.0 is flat) and the target: rollup < 20 ms at the
largest. No trigger is added to the audit table, so an audit INSERT costs what it did; the
fold's own cost is printed per row folded.
"""

import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")
# Filling 1.6 M rows takes longer than a request may: no statement timeout or call deadline.
os.environ.setdefault("DB_STATEMENT_TIMEOUT", "0")
os.environ.setdefault("DB_CALL_DEADLINE", "0")

import django

django.setup()

from django.db import connection, connections  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.db.models.functions import TruncHour  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit import timeline  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "25"))
PER_DAY = [int(n) for n in os.environ.get("BENCH_PER_DAY", "5000,82000,800000").split(",")]
DAYS = float(os.environ.get("BENCH_DAYS", "2"))
TAIL_SECONDS = 45
CHUNK = 50_000
TARGET_MS = 20.0

# The mix of bench/audit_feed.py: (action, weight); severities INFO 90 %, WARNING 6 %,
# ERROR 3.5 %, CRITICAL 0.5 %.
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

# Rows g = start..stop of `total`, spread evenly from `first` to `last` (ids grow with time).
FILL_SQL = """
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    user_agent, request_path, request_method, request_id, entity_type, entity_id, metadata,
    error_message, error_stack, created_at
)
SELECT
    (%(actions)s::text[])[1 + floor(%(n_actions)s * random())::int],
    CASE WHEN r < 0.005 THEN 'CRITICAL' WHEN r < 0.040 THEN 'ERROR'
         WHEN r < 0.100 THEN 'WARNING' ELSE 'INFO' END,
    'Lead ' || g || ' updated by staff', 'REQUEST', 1 + (g %% 7),
    'staff' || (g %% 7) || '@planbeta.example', 'Staff ' || (g %% 7), 'MARKETING',
    'Mozilla/5.0 (bench)', '/api/leads/' || g, 'PATCH', md5(g::text), 'Lead',
    (g %% 5000)::text, '{}'::jsonb, '', '',
    %(first)s::timestamptz + (g::float8 / %(total)s) * (%(last)s::timestamptz - %(first)s)
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
     LATERAL (SELECT random() + g * 0 AS r) AS rnd
"""


def fill(total: int, first, last) -> None:
    actions = [a for a, w in ACTIONS for _ in range(w)]
    with connection.cursor() as cursor:
        # Past times written now, in time order: on time rows, not late ones (audit.timeline).
        cursor.execute(timeline.PAUSE_LATE)
        for start in range(1, total + 1, CHUNK):
            cursor.execute(
                FILL_SQL,
                {
                    "actions": actions,
                    "n_actions": len(actions),
                    "total": total,
                    "first": first,
                    "last": last,
                    "start": start,
                    "stop": min(start + CHUNK - 1, total),
                },
            )
        cursor.execute(timeline.RESUME_LATE)


# --- the former reads: one grouped COUNT over the window's rows ---------------------------------


def raw_counts(now, window: timedelta, actions=None) -> Counter:
    from audit.models import AuditLog
    from audit.selectors import in_window

    rows = in_window(AuditLog.objects.all(), now=now, window=window)
    if actions:
        rows = rows.filter(action__in=actions)
    grouped = (
        rows.annotate(hour=TruncHour("created_at"))
        .values_list("hour", "action", "severity")
        .annotate(n=Count("*"))
        .order_by()
    )
    return Counter({(h, a, s): n for h, a, s, n in grouped})


def raw_error_rate(now) -> tuple[int, int, int]:
    from audit.models import AuditLog
    from audit.selectors import CLIENT_MISTAKE_ACTIONS, in_window

    rows = in_window(AuditLog.objects.all(), now=now, window=timedelta(hours=1))
    per = dict(
        rows.exclude(action__in=CLIENT_MISTAKE_ACTIONS)
        .values_list("severity")
        .annotate(n=Count("*"))
        .order_by()
    )
    return per.get("ERROR", 0), per.get("CRITICAL", 0), sum(per.values())


def raw_activity(now) -> tuple[int, int]:
    from audit.models import AuditLog
    from audit.selectors import in_window

    rows = in_window(AuditLog.objects.all(), now=now, window=timedelta(hours=24))
    per = dict(
        rows.filter(action__in=["LEAD_TO_STUDENT_CONVERSION", "PAYMENT_RECEIVED"], severity="INFO")
        .values_list("action")
        .annotate(n=Count("*"))
        .order_by()
    )
    return per.get("LEAD_TO_STUDENT_CONVERSION", 0), per.get("PAYMENT_RECEIVED", 0)


def side_by_side(raw: Callable[[], Any], rolled: Callable[[], Any]) -> tuple[float, float, float]:
    """Median ms of each, called alternately so that both see the same load, and the median CPU
    time of this process in the rollup's calls (the rest of its time is the database and the
    wait for a core)."""
    raw_ms, rolled_ms, rolled_cpu = [], [], []
    for i in range(RUNS + 3):
        started = time.perf_counter()
        raw()
        elapsed = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        rolled()
        if i >= 3:  # warm-up
            raw_ms.append(elapsed * 1000)
            rolled_ms.append((time.perf_counter() - started) * 1000)
            rolled_cpu.append((time.process_time() - cpu) * 1000)
    return statistics.median(raw_ms), statistics.median(rolled_ms), statistics.median(rolled_cpu)


def measure(per_day: int) -> dict[str, tuple[float, float, float]]:
    from audit import rollup
    from audit.models import AuditLog, ChainState
    from audit.selectors import activity_counts, audit_log_stats, error_rate

    now = timezone.now()
    total = int(per_day * DAYS)
    tail = max(1, per_day * TAIL_SECONDS // 86400)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE audit_auditlog, audit_auditminutecount, audit_auditrollupstate,"
            " audit_chainstate RESTART IDENTITY"
        )
    started = time.perf_counter()
    fill(total, now - timedelta(days=DAYS), now - timedelta(seconds=TAIL_SECONDS))
    filled = time.perf_counter() - started
    top = AuditLog.objects.order_by("-id").values_list("id", flat=True).first()
    ChainState.objects.update_or_create(pk=1, defaults={"horizon_id": top})
    started = time.perf_counter()
    run = rollup.fold(budget_seconds=3600)
    folded = time.perf_counter() - started
    assert run.rows == total, (run.rows, total)
    fill_tail = f"""
        INSERT INTO audit_auditlog (action, severity, description, source, user_email,
            user_name, user_role, user_agent, request_path, request_method, request_id,
            entity_type, entity_id, metadata, error_message, error_stack, created_at)
        SELECT CASE WHEN g %% 20 = 0 THEN 'API_ERROR' ELSE 'LEAD_UPDATED' END,
            CASE WHEN g %% 20 = 0 THEN 'ERROR' ELSE 'INFO' END, 'tail', 'REQUEST', '', '', '',
            '', '', '', '', '', '', '{{}}'::jsonb, '', '',
            %s::timestamptz - (g::float8 / {tail}) * interval '{TAIL_SECONDS} seconds'
        FROM generate_series(1, {tail}) AS g"""
    with connection.cursor() as cursor:
        cursor.execute(fill_tail, [now])
        cursor.execute("VACUUM ANALYZE audit_auditlog")
        cursor.execute("VACUUM ANALYZE audit_auditminutecount")
        cursor.execute("SELECT count(*) FROM audit_auditminutecount")
        minutes = cursor.fetchone()[0]
    print(
        f"\n{per_day:,} rows a day: {total + tail:,} rows over {DAYS:g} days ({filled:.1f} s to"
        f" fill), {tail:,} above the fold mark; folded {total:,} rows in {folded:.2f} s"
        f" ({folded / total * 1e6:.2f} us a row) into {minutes:,} minute counts"
    )

    # Same numbers, both ways: the rollup is only faster if it is also right.
    day = timedelta(hours=24)
    assert rollup.window_counts(now=now, window=day) == raw_counts(now, day)
    rate = error_rate(now=now)
    assert (rate.errors, rate.critical, rate.total) == raw_error_rate(now)
    activity = activity_counts(now=now, window=day)
    assert (activity.conversions, activity.payments) == raw_activity(now)
    print(f"  same numbers both ways: {sum(raw_counts(now, day).values()):,} rows in 24 h")

    results = {
        "24 h stats + hourly chart": side_by_side(
            lambda: raw_counts(now, day), lambda: audit_log_stats(now=now)
        ),
        "error rate (1 h)": side_by_side(lambda: raw_error_rate(now), lambda: error_rate(now=now)),
        "activity counts (24 h)": side_by_side(
            lambda: raw_activity(now), lambda: activity_counts(now=now, window=day)
        ),
    }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  machine load average while measuring: {load} ({os.cpu_count()} CPUs)")
    print(
        f"  {'median of ' + str(RUNS):<28} {'raw':>10} {'rollup':>10} {'raw/rollup':>11}"
        "   rollup's own CPU"
    )
    for label, (raw, rolled, cpu) in results.items():
        print(f"  {label:<28} {raw:7.2f} ms {rolled:7.2f} ms {raw / rolled:10.1f}x   {cpu:7.2f} ms")
    return results


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        print(
            "Server time of the selectors (median, ms), counted over the rows (raw) and read"
            " from the minute counts (rollup)"
        )
        results = {per_day: measure(per_day) for per_day in PER_DAY}
        if len(PER_DAY) >= 2:
            small, big = PER_DAY[0], PER_DAY[-1]
            print(f"\nGrowth from {small:,} to {big:,} rows a day ({big / small:.0f}x the rows)")
            for label in results[small]:
                (raw_a, roll_a, _), (raw_b, roll_b, _) = results[small][label], results[big][label]
                verdict = "ok" if roll_b < TARGET_MS else "MISSED"
                print(
                    f"  {label:<28} raw {raw_b / raw_a:6.1f}x   rollup {roll_b / roll_a:5.2f}x"
                    f"   rollup at {big:,}: {roll_b:.2f} ms (< {TARGET_MS:g} ms {verdict})"
                )
        print(
            "\nAudit INSERT: no trigger was added (the fold reads committed rows), so a write"
            " costs what it did."
        )
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
