"""What one pay-and-convert's time is made of, in this process: the statements, our CPU, the
database's CPU.

Run (the database server on this machine: its backend's CPU is read from /proc):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/pay_and_convert_parts.py

Creates (and drops) its own database from DATABASE_URL's name. Calls the service as
bench/pay_and_convert.py (b) does, BENCH_N (default 300) times after 30 to warm up, and prints
the medians of: the whole call; this process's CPU time during it; the CPU time the database's
backend process spent on it (utime + stime of its /proc/<pid>/stat, in clock ticks, so a mean);
and each statement's time from sending to its result (a Django execute wrapper), by the shape
tests/payments/test_conversion_statements.py lists. BEGIN and COMMIT are not statements Django
executes through a cursor, so they are in the call's time but not in the list.
"""

import collections
import os
import re
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402 - after the environment above

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

N = int(os.environ.get("BENCH_N", "300"))
WARM = 30
TICK = os.sysconf("SC_CLK_TCK")


def shape(sql: str) -> str:
    verb = sql.split(None, 1)[0].upper()
    while re.search(r"\([^()]*\)", sql):
        sql = re.sub(r"\([^()]*\)", "", sql)
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"', sql)
    return f"{verb} {table.group(1)}" if table else verb


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        run()
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


def run() -> None:
    from accounts.models import Role
    from audit.context import audit_context
    from audit.models import Source
    from invoices.selectors import invoice_for_payment
    from invoices.services import invoice_generate
    from leads.services import lead_create
    from payments.services import pay_and_convert
    from tests.factories import make_user

    user = make_user(email="bench@example.com", role=Role.MARKETING)
    ids = []
    for i in range(WARM + N):
        lead = lead_create(actor=user, name=f"Bench {i}", whatsapp=f"+9199{i:08d}", source="OTHER")
        invoice = invoice_generate(
            lead=lead,
            currency="EUR",
            items=[{"description": "A1", "amount": Decimal("134.00"), "level": "A1"}],
            actor=user,
        )
        ids.append(invoice.pk)

    statements: dict[str, list[float]] = collections.defaultdict(list)
    measuring = False

    def timed(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if measuring:
                statements[shape(sql)].append((time.perf_counter() - t0) * 1000)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()

    def backend_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def convert(invoice_id: int) -> None:
        with audit_context(source=Source.REQUEST):
            answer = pay_and_convert(
                invoice=invoice_for_payment(invoice_id),
                amount=Decimal("100.00"),
                idempotency_key=f"parts-{uuid.uuid4()}",
                actor=user,
            )
        assert answer.status_code == 201

    connection.execute_wrappers.append(timed)
    for invoice_id in ids[:WARM]:
        convert(invoice_id)
    walls, cpus = [], []
    measuring = True
    db_cpu_before = backend_cpu()
    for invoice_id in ids[WARM:]:
        c0, t0 = time.process_time(), time.perf_counter()
        convert(invoice_id)
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    db_cpu = (backend_cpu() - db_cpu_before) * 1000 / N

    load = os.getloadavg()
    print(f"pay-and-convert in this process, {N} calls; load average {load[0]:.1f}; milliseconds")
    print(f"  whole call                     p50 {statistics.median(walls):6.2f}")
    print(f"  this process's CPU             p50 {statistics.median(cpus):6.2f}")
    print(f"  the database backend's CPU    mean {db_cpu:6.2f}")
    print("  each statement, send to result (our conversion of its parameters included):")
    total = 0.0
    for name, values in statements.items():
        p50 = statistics.median(values)
        total += p50 * len(values) / N
        print(f"    {name:<36} x{len(values) / N:.0f}  p50 {p50:6.3f}")
    print(f"  statements together            p50 sum {total:6.2f}")


if __name__ == "__main__":
    main()
