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

Side by side, calls alternating: the hot statements (core.rows.cursor) through Django's own
cursor, which binds the parameters on the client, and through the backend's prepared cursor
(server-side binding), as the service runs them.
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
# Django's cursor for the hot statements (client-side binding, as before core.rows.cursor), and
# the backend's prepared, server-bound one (core.postgresql.PreparedCursor).
CLIENT, SERVER = "client-bound", "prepared"
MODES = (CLIENT, SERVER)


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

    # Each mode's own figures; the calls alternate between the modes, so that load from
    # elsewhere on the shared machine hits both alike.
    statements: dict[str, dict[str, list[float]]] = {
        m: collections.defaultdict(list) for m in MODES
    }
    current: dict[str, str | None] = {"mode": None}

    def timed(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if current["mode"] is not None:
                statements[current["mode"]][shape(sql)].append((time.perf_counter() - t0) * 1000)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()

    def backend_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def use(mode: str) -> None:
        # core.rows.cursor takes the backend's bound_cursor; without it, Django's own cursor.
        db = connections["default"]
        if mode == CLIENT:
            db.bound_cursor = db.cursor
        else:
            db.__dict__.pop("bound_cursor", None)

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
    for i, invoice_id in enumerate(ids[:WARM]):
        use(MODES[i % 2])
        convert(invoice_id)
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    cpus: dict[str, list[float]] = {m: [] for m in MODES}
    db_cpu = dict.fromkeys(MODES, 0.0)
    for i, invoice_id in enumerate(ids[WARM:]):
        mode = MODES[i % 2]
        use(mode)
        current["mode"] = mode
        db0, c0, t0 = backend_cpu(), time.process_time(), time.perf_counter()
        convert(invoice_id)
        walls[mode].append((time.perf_counter() - t0) * 1000)
        cpus[mode].append((time.process_time() - c0) * 1000)
        db_cpu[mode] += backend_cpu() - db0
        current["mode"] = None
    use(SERVER)

    load = os.getloadavg()
    n = N // 2
    print(
        f"pay-and-convert in this process, {n} calls per mode, alternating; "
        f"load average {load[0]:.1f}; milliseconds"
    )
    print(f"  {'':<38} {'':>7} {CLIENT:>14} {SERVER:>14}   ratio")

    def line(label: str, kind: str, values: dict[str, float]) -> None:
        a, b = values[CLIENT], values[SERVER]
        print(f"  {label:<38} {kind:>7} {a:14.2f} {b:14.2f}   {a / b:4.2f}x")

    line("whole call", "p50", {m: statistics.median(walls[m]) for m in MODES})
    line("this process's CPU", "p50", {m: statistics.median(cpus[m]) for m in MODES})
    line("the database backend's CPU", "mean", {m: db_cpu[m] * 1000 / n for m in MODES})
    print("  each statement, send to result (our conversion of its parameters included):")
    totals = dict.fromkeys(MODES, 0.0)
    for name in statements[SERVER]:
        p50 = {m: statistics.median(statements[m][name]) for m in MODES}
        for m in MODES:
            totals[m] += p50[m] * len(statements[m][name]) / n
        line(f"  {name} x{len(statements[SERVER][name]) / n:.0f}", "p50", p50)
    assert statements[CLIENT].keys() == statements[SERVER].keys()
    line("statements together", "p50 sum", totals)


if __name__ == "__main__":
    main()
