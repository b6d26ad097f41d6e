"""Time of one reconciliation (monitoring/reconciliation.py) at 10 thousand and 100 thousand
payments, and of the health check that reports its latest result.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench .venv/bin/python bench/reconcile.py

Creates (and drops) its own test database from DATABASE_URL's name. Each student is a lead with
one invoice, converted with a first payment and paid off with a second, with the audit rows the
services write (INVOICE_GENERATED, LEAD_TO_STUDENT_CONVERSION, PAYMENT_RECEIVED twice,
STUDENT_CREATED, LEAD_CONVERTED) and as many unrelated rows again (logins, edits), filled with
generate_series and ANALYZEd. Median of BENCH_RUNS runs (default 5) after a warm-up; BENCH_PAYMENTS
overrides the sizes.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")
# Filling 100,000 students takes longer than the production statement timeout allows one INSERT.
os.environ.setdefault("DB_STATEMENT_TIMEOUT", "0")
os.environ.setdefault("DB_CALL_DEADLINE", "0")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SIZES = [int(n) for n in os.environ.get("BENCH_PAYMENTS", "10000,100000").split(",")]

# %(lo)s < g <= %(hi)s: student g, with lead, invoice and student id g, payments 2g-1 and 2g.
FILL = [
    """INSERT INTO leads_lead (id, name, whatsapp, email, phone, source, status, quality,
        interested_level, notes, converted, converted_at, created_at, updated_at)
    SELECT g, 'Lead ' || g, '+9198' || lpad(g::text, 8, '0'), '', '', 'META_ADS', 'CONVERTED',
        '', 'A1', '', true, now(), now(), now()
    FROM generate_series(%(lo)s + 1, %(hi)s) g""",
    """INSERT INTO invoices_invoice (id, number, year, sequence, lead_id, status, currency,
        subtotal, discount, total_amount, payable_now, paid_amount, issue_date, due_date, notes,
        cancel_reason, send_token, created_at, updated_at)
    SELECT g, 'PB-2026-' || g, 2026, g, g, 'PAID', 'EUR', 100, 0, 100, 100, 100, now(), now(),
        '', '', '', now(), now()
    FROM generate_series(%(lo)s + 1, %(hi)s) g""",
    """INSERT INTO payments_student (id, student_code, lead_id, name, email, whatsapp, level,
        currency, total_amount, total_paid, payment_status, created_at, updated_at)
    SELECT g, 'STU-2026-' || g, g, 'Lead ' || g, '', '+9198' || lpad(g::text, 8, '0'), 'A1',
        'EUR', 100, 100, 'PAID', now(), now()
    FROM generate_series(%(lo)s + 1, %(hi)s) g""",
    """INSERT INTO payments_payment (id, student_id, invoice_id, amount, currency, method,
        transaction_id, status, paid_at, idempotency_key, created_at)
    SELECT 2 * g - k, g, g, CASE k WHEN 1 THEN 40 ELSE 60 END, 'EUR', 'UPI', '', 'COMPLETED',
        now(), 'bench-' || g || '-' || k, now()
    FROM generate_series(%(lo)s + 1, %(hi)s) g, generate_series(0, 1) k""",
    # The audit rows the services write for each student, then as many unrelated ones.
    """INSERT INTO audit_auditlog (action, severity, description, source, user_email, user_name,
        user_role, user_agent, request_path, request_method, request_id, entity_type, entity_id,
        metadata, error_message, error_stack, created_at)
    SELECT r.action, 'INFO', 'bench', 'REQUEST', '', '', '', '', '', '', '', r.entity_type,
        r.entity_id, r.metadata, '', '', now()
    FROM generate_series(%(lo)s + 1, %(hi)s) g, LATERAL (VALUES
        ('INVOICE_GENERATED', 'Invoice', g::text, '{}'::jsonb),
        ('LEAD_TO_STUDENT_CONVERSION', 'Invoice', g::text, jsonb_build_object('studentPk', g)),
        ('PAYMENT_RECEIVED', 'Payment', (2 * g - 1)::text,
            '{"amount": "40.00", "currency": "EUR"}'::jsonb),
        ('STUDENT_CREATED', 'Student', g::text, '{}'::jsonb),
        ('LEAD_CONVERTED', 'Lead', g::text, '{}'::jsonb),
        ('PAYMENT_RECEIVED', 'Payment', (2 * g)::text,
            '{"amount": "60.00", "currency": "EUR"}'::jsonb),
        ('LOGIN', '', '', '{}'::jsonb), ('LEAD_UPDATED', 'Lead', g::text, '{}'::jsonb),
        ('LOGIN', '', '', '{}'::jsonb), ('API_ERROR', '', '', '{}'::jsonb),
        ('EMAIL_SENT', 'Invoice', g::text, '{}'::jsonb), ('LOGOUT', '', '', '{}'::jsonb)
    ) AS r(action, entity_type, entity_id, metadata)""",
]


def fill(lo: int, hi: int) -> None:
    with connection.cursor() as cursor:
        for sql in FILL:
            cursor.execute(sql, {"lo": lo, "hi": hi})
        cursor.execute("ANALYZE")


def median_ms(call) -> float:
    samples = []
    for i in range(RUNS + 1):
        t0 = time.perf_counter()
        call()
        if i >= 1:  # warm-up
            samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.conf import settings

        from monitoring import checks
        from monitoring.reconciliation import reconcile, reconcile_and_record

        settings.HEALTH_CHECK_DATABASE = "default"
        results = {}
        students = 0
        for payments in SIZES:
            fill(students, payments // 2)
            students = payments // 2
            result = reconcile()
            assert result.ok, [m.line() for m in result.mismatches[:5]]
            reconcile_and_record()
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM audit_auditlog")
                (audit_rows,) = cursor.fetchone()
            runs: list = []
            results[payments] = {
                "audit rows": audit_rows,
                "reconcile()": median_ms(lambda runs=runs: runs.append(reconcile())),
                "reconciliation health check": median_ms(checks.check_reconciliation),
            }
            for kind in runs[0].timings:
                results[payments][kind] = statistics.median(r.timings[kind] for r in runs)
            print(f"{payments:,} payments: done", file=sys.stderr)

        print(f"\nReconciliation ({RUNS} runs each, median)")
        print(f"  {'payments':<32}" + "".join(f"{size:>14,}" for size in SIZES))
        audit = "".join(f"{results[size]['audit rows']:>14,}" for size in SIZES)
        print(f"  {'audit rows':<32}{audit}")
        kinds = [k for k in results[SIZES[0]] if k not in ("audit rows", "reconcile()")]
        for label in ("reconcile()", *kinds):
            row = "".join(f"{results[size][label]:>11.1f} ms" for size in SIZES)
            print(f"  {label:<32}{row}")
        first, last = SIZES[0], SIZES[-1]
        ratio = results[last]["reconcile()"] / results[first]["reconcile()"]
        growth = f"{ratio:.1f}x the time for {last / first:.0f}x the rows"
        print(f"  reconcile() at {last:,} against {first:,}: {growth}")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
