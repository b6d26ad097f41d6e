"""Cost of one audit write on PostgreSQL.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_write.py

Creates (and drops) its own database from DATABASE_URL's name, migrates it, then times:
  * audit_record inside a transaction that also inserts a business row (the common case), and
  * audit_record_independent from inside an outer transaction (the failure path, second connection),
against the same transaction without the audit row.
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

from django.db import connection, connections, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

N = int(os.environ.get("BENCH_N", "2000"))


def timed(fn, n=N):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.mean(samples), samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from audit.models import Action, Severity
        from audit.services import AuditEntry, audit_record, audit_record_independent
        from leads.models import Lead

        def business_only():
            with transaction.atomic():
                Lead.objects.create(name="Bench", whatsapp="+919800000000", source="OTHER")

        def business_and_audit():
            with transaction.atomic():
                lead = Lead.objects.create(name="Bench", whatsapp="+919800000000", source="OTHER")
                audit_record(
                    AuditEntry(
                        Action.LEAD_CREATED,
                        description="Lead Bench created",
                        entity=lead,
                        metadata={"leadName": "Bench", "source": "OTHER", "status": "NEW"},
                    ),
                )

        def independent_failure_row():
            with transaction.atomic():
                audit_record_independent(
                    AuditEntry(
                        Action.SYSTEM_ERROR,
                        severity=Severity.ERROR,
                        description="bench failure",
                        metadata={"invoiceNumber": "PB-2026-0001"},
                    ),
                )

        for fn in (business_only, business_and_audit, independent_failure_row):
            timed(fn, 200)  # warm up connections and caches
        base = timed(business_only)
        with_audit = timed(business_and_audit)
        independent = timed(independent_failure_row)
        print(f"PostgreSQL {connection.pg_version}, {N} iterations each (ms: mean / p50 / p99)")
        rows = [
            ("transaction with one business insert", base),
            ("... plus one audit_record in the same tx", with_audit),
            ("audit_record_independent (2nd connection)", independent),
        ]
        for label, (mean, p50, p99) in rows:
            print(f"  {label:<44} {mean:.3f} / {p50:.3f} / {p99:.3f}")
        print(
            f"  {'cost of one transactional audit write':<44} {with_audit[1] - base[1]:.3f} (p50)"
        )
    finally:
        connections["audit"].close()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
