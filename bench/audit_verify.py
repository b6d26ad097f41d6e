"""What the audit hash chain costs to build and to check, at 100 thousand and 1 million rows.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_verify.py

Creates (and drops) its own test database from DATABASE_URL's name, fills audit_auditlog as
bench/audit_feed.py does (generate_series, realistic columns), then times:
  * sealing the whole backlog (audit.chain.seal_pending: what beat does after an outage);
  * `audit_verify`'s walk of the whole chain (audit.chain.verify, nothing left to seal);
and prints rows per second of each, side by side per size, with the process's peak memory after
each size: sealing and the walk read in batches and chunks, so memory does not grow with the table.
BENCH_ROWS overrides the sizes (comma-separated).
"""

import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# DEBUG off: Django's debug query log would keep the last 9,000 statements (each with a batch's
# arrays) and hide what the walk itself holds in memory.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from django.db import connection, connections
from django.test.utils import setup_databases, teardown_databases
from django.utils import timezone

from bench.audit_feed import fill_to

SIZES = [int(n) for n in os.environ.get("BENCH_ROWS", "100000,1000000").split(",")]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from audit import chain

        print(f"PostgreSQL {connection.pg_version}; audit rows sealed, then the chain walked")
        print(f"  {'rows':>9}  {'seal rows/s':>12}  {'verify rows/s':>14}  {'peak MB':>8}")
        for size in SIZES:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE audit_auditseal, audit_chainstate")
            fill_to(size, timezone.now())
            started = time.perf_counter()
            sealed = chain.seal_pending(budget_seconds=3600)
            seal_seconds = time.perf_counter() - started
            assert sealed == size, (sealed, size)
            result = chain.verify()
            assert result.intact and result.checked == size, result
            print(
                f"  {size:>9,}  {size / seal_seconds:>12,.0f}  "
                f"{result.checked / result.seconds:>14,.0f}  {peak_mb():>8.0f}"
            )
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
