"""What an archive of one month of audit rows costs to write, verify and restore, and that its
memory does not grow with the month.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_archive.py

Creates (and drops) its own test database from DATABASE_URL's name and a temporary archive
directory. For each size (BENCH_ROWS, comma-separated; default 10,000 and 100,000 rows), it
fills December 2016 with that many money rows (generate_series, realistic columns, a JSON
metadata object each), seals them, then times, side by side:
  * archive_month (read in id chunks, gzip to temporary files, into the storage);
  * verify_archive (file hashes, then every line against its seal);
  * restore_archive (verify again, then load into audit_restored).
and prints rows per second of each, the archive's size, and the process's peak memory (ru_maxrss)
after each size: the sizes run smallest first, so a peak that stays put while the month grows
tenfold is memory that does not grow with it. Each step runs BENCH_RUNS times (default 3); the
median is printed, the machine being shared.
"""

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# DEBUG off: Django's debug query log would keep every statement and hide what the code holds.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("HEALTH_CHECK_TOKEN", "bench-health-token-0123456789")
os.environ.setdefault("DB_STATEMENT_TIMEOUT", "0")
os.environ.setdefault("DB_CALL_DEADLINE", "0")
ARCHIVE_DIR = tempfile.mkdtemp(prefix="bench-archive-")
os.environ["AUDIT_ARCHIVE_DIR"] = ARCHIVE_DIR
os.environ["AUDIT_ARCHIVE_S3_BUCKET"] = ""  # the bench's own directory, never a real bucket

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from audit import timeline  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_ROWS", "10000,100000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

FILL_SQL = """
INSERT INTO audit_auditlog (action, severity, description, source, user_id, user_email,
    user_name, user_role, ip_address, user_agent, request_path, request_method, request_id,
    entity_type, entity_id, metadata, error_message, error_stack, created_at)
SELECT 'PAYMENT_RECEIVED', 'INFO', 'Payment of EUR 250.00 for PB-2016-' || g, 'REQUEST', 3,
    'anna@planbeta.example', 'Anna K', 'MARKETING', '203.0.113.7',
    'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', '/api/invoices/' || g || '/payments',
    'POST', md5(g::text), 'Payment', g::text,
    jsonb_build_object('amount', '250.00', 'currency', 'EUR', 'invoiceNumber', 'PB-2016-' || g,
                       'method', 'BANK_TRANSFER', 'transactionId', 'TX' || g),
    '', '', timestamptz '2016-12-01 00:00:00+00' + (g * interval '1 second') * (2678399.0 / %s)
FROM generate_series(1, %s) AS g
"""


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_seconds(step) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        step()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from datetime import date

        from audit import archive, chain
        from audit.models import AuditArchive
        from audit.restore import restore_archive

        december = date(2016, 12, 1)
        key = archive.unit_key(december, "money")
        storage = archive.archive_storage()
        print(f"PostgreSQL {connection.pg_version}; one month of money rows, median of {RUNS}")
        print(
            f"  {'rows':>9}  {'archive rows/s':>15}  {'verify rows/s':>14}  "
            f"{'restore rows/s':>15}  {'archive MB':>10}  {'peak MB':>8}"
        )
        for size in SIZES:
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE audit_auditlog, audit_auditseal, audit_chainstate,"
                    " audit_auditarchive RESTART IDENTITY"
                )
                timeline.forget()  # the ids start again
                # Past times written now, in time order: on time (audit.timeline).
                cursor.execute(timeline.PAUSE_LATE)
                cursor.execute(FILL_SQL, [size, size])
                cursor.execute(timeline.RESUME_LATE)
                cursor.execute("VACUUM ANALYZE audit_auditlog")
            chain.seal_pending(budget_seconds=3600)

            def write(size=size):
                AuditArchive.objects.all().delete()
                manifest = archive.archive_month(december, "money", replace=True)
                assert manifest.row_count == size, manifest.row_count

            def check(size=size):
                result = archive.verify_archive(key)
                assert result.ok and result.rows == size, result.problems

            def restore(size=size):
                assert restore_archive(key) == size

            archive_s = median_seconds(write)
            verify_s = median_seconds(check)
            restore_s = median_seconds(restore)
            megabytes = sum(
                storage.size(f"{key}/{name}") for name in (archive.JSONL, archive.CSV)
            ) / (1024 * 1024)
            print(
                f"  {size:>9,}  {size / archive_s:>15,.0f}  {size / verify_s:>14,.0f}  "
                f"{size / restore_s:>15,.0f}  {megabytes:>10.1f}  {peak_mb():>8.0f}"
            )
        print("  (restore verifies first: its rate includes a second verification)")
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)
        shutil.rmtree(ARCHIVE_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
