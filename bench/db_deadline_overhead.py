"""What the client-side deadline (core.postgresql) costs a query that does not stall.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/db_deadline_overhead.py

Creates (and drops) its own database from DATABASE_URL's name. Two connections to it, one
through our backend (every wait registered with the watchdog, the fail-fast check on each
statement) and one through Django's plain PostgreSQL backend; `SELECT 1` and a one-row INSERT in
a transaction on each, in alternating blocks so that load from elsewhere on the machine hits both
alike. Prints the time per operation and the ratio.
"""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-" + uuid.uuid4().hex)

import django  # noqa: E402 - after the environment above

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.db.utils import load_backend  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from core import db_deadline  # noqa: E402

N = int(os.environ.get("BENCH_N", "4000"))
BLOCK = 200
N_PAY = int(os.environ.get("BENCH_N_PAY", "300"))
BLOCK_PAY = 20


def wrapper(engine: str, alias: str):
    settings_dict = {**connection.settings_dict, "ENGINE": engine}
    return load_backend(engine).DatabaseWrapper(settings_dict, alias)


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        run()
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


def run():
    conns = {
        "with deadline": wrapper("core.postgresql", "bench_deadline"),
        "plain Django": wrapper("django.db.backends.postgresql", "bench_plain"),
    }
    for conn in conns.values():
        with conn.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_rows (id serial primary key, note text)")

    def select_one(conn):
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def insert_in_transaction(conn):
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            cursor.execute("INSERT INTO bench_rows (note) VALUES (%s)", ["x"])

    # The web process runs inside a request scope (DeadlineScopeMiddleware).
    with db_deadline.request_scope():
        for conn in conns.values():
            connections[conn.alias] = conn
        samples = {(op, name): [] for op in ("select", "insert") for name in conns}
        for op, fn in (("select", select_one), ("insert", insert_in_transaction)):
            for conn in conns.values():  # warm up
                for _ in range(BLOCK):
                    fn(conn)
            for _ in range(0, N, BLOCK):
                for name, conn in conns.items():
                    started = time.perf_counter()
                    for _ in range(BLOCK):
                        fn(conn)
                    samples[(op, name)].append((time.perf_counter() - started) / BLOCK * 1e6)
    for conn in conns.values():
        conn.close()
    samples.update(pay_and_convert_samples())
    print(
        f"PostgreSQL {connection.pg_version}; {N} operations each (pay-and-convert {N_PAY}), "
        f"alternating blocks; median per operation"
    )
    for op, label in (
        ("select", "SELECT 1"),
        ("insert", "INSERT in a transaction"),
        ("pay", "pay-and-convert service"),
    ):
        medians = {name: statistics.median(samples[(op, name)]) for name in conns}
        line = "   ".join(f"{name} {value:8.1f} µs" for name, value in medians.items())
        ratio = medians["with deadline"] / medians["plain Django"]
        print(f"  {label:<24} {line}   ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")


def pay_and_convert_samples() -> dict:
    """The whole money operation (claim, about twenty statements, five audit rows, commit)."""
    from decimal import Decimal

    from accounts.models import Role
    from payments.services import pay_and_convert
    from tests.factories import make_user
    from tests.money_factories import make_invoice

    user = make_user(email="bench@example.com", role=Role.MARKETING)
    invoices = [make_invoice(actor=user) for _ in range(2 * N_PAY + 2 * BLOCK_PAY)]
    original = {alias: connections[alias] for alias in ("default", "audit")}
    modes = {
        "with deadline": "core.postgresql",
        "plain Django": "django.db.backends.postgresql",
    }
    pairs = {name: {a: wrapper(engine, a) for a in original} for name, engine in modes.items()}
    samples = {("pay", name): [] for name in modes}
    try:
        with db_deadline.request_scope():
            for block in range(0, len(invoices), 2 * BLOCK_PAY):
                for i, name in enumerate(modes):
                    for alias, conn in pairs[name].items():
                        connections[alias] = conn
                    start = block + i * BLOCK_PAY
                    for invoice in invoices[start : start + BLOCK_PAY]:
                        started = time.perf_counter()
                        pay_and_convert(
                            invoice=invoice,
                            amount=Decimal("100.00"),
                            idempotency_key=uuid.uuid4().hex,
                            actor=user,
                        )
                        if block:  # the first block warms up
                            samples[("pay", name)].append((time.perf_counter() - started) * 1e6)
    finally:
        for alias, conn in original.items():
            connections[alias] = conn
        for pair in pairs.values():
            for conn in pair.values():
                conn.close()
    return samples


if __name__ == "__main__":
    main()
