"""Cost of one alert evaluation (rules 1, 2, 4, 6) over a large audit log on PostgreSQL.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/alerts_evaluate.py

Creates (and drops) its own test database from DATABASE_URL's name, fills the audit log with
BENCH_ROWS rows spread over 90 days (2 % ERROR, a few CRITICAL), then times evaluate_rules() with
no channels configured (state changes only). Rules 3 and 5 (the health checks' probe, the health
report and the heartbeat) are left out of the run: they cost the same whatever the log's size.
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

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit import timeline  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "50"))


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    settings.FOUNDER_ALERT_EMAILS = []
    settings.ALERT_WEBHOOK_URLS = []
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from alerts import services
        from alerts.services import evaluate_rules

        # In this process only: the rules whose cost grows with the audit log.
        services.RULES = tuple(
            rule
            for rule in services.RULES
            if rule.name not in ("slow_database", "health_unhealthy", "heartbeat_stale")
        )

        now = timezone.now()
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            # Spread over 90 days; the audit table refuses UPDATE, so rows are generated whole.
            # Past times written now, in time order: on time rows, not late ones (audit.timeline).
            cursor.execute(timeline.PAUSE_LATE)
            cursor.execute(
                """
                INSERT INTO audit_auditlog (action, severity, description, source, user_email,
                    user_name, user_role, user_agent, request_path, request_method, request_id,
                    entity_type, entity_id, metadata, error_message, error_stack, created_at)
                SELECT
                    CASE WHEN i %% 97 = 0 THEN 'PAYMENT_RECEIVED' ELSE 'LEAD_UPDATED' END,
                    CASE WHEN i %% 50 = 0 THEN 'ERROR' WHEN i %% 100003 = 0 THEN 'CRITICAL'
                         ELSE 'INFO' END,
                    'bench', 'SYSTEM', '', '', '', '', '', '', '', '', '', '{}', '', '',
                    %s - (i * interval '1 second' * 90 * 86400 / %s)
                FROM generate_series(1, %s) AS i
                """,
                [now, ROWS, ROWS],
            )
            cursor.execute(timeline.RESUME_LATE)
            cursor.execute("ANALYZE audit_auditlog")
        print(f"inserted {ROWS} audit rows in {time.perf_counter() - t0:.1f} s")

        samples = []
        for i in range(RUNS):
            start = time.perf_counter()
            evaluate_rules(now=now + timedelta(seconds=i))
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        print(
            f"evaluate_rules over {ROWS} rows, {RUNS} runs: "
            f"mean {statistics.mean(samples):.1f} ms, median {samples[len(samples) // 2]:.1f} ms, "
            f"max {samples[-1]:.1f} ms"
        )
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
