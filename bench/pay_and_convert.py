"""What the audit trail costs pay-and-convert, measured through HTTP on PostgreSQL.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/pay_and_convert.py

Creates (and drops) its own database from DATABASE_URL's name and starts two gunicorn servers
on 127.0.0.1 as production runs them (sync worker, persistent database connection): one with the
normal app, one with bench/wsgi_without_audit.py, which patches the four business audit rows
out of its own process (payments.services._audit_conversion becomes a no-op). One invoice is
prepared per request through the services; requests then alternate between the two servers in
blocks, so load from elsewhere on the machine hits both alike. Meanwhile a thread of this
process seals the audit rows every second, as beat does (audit.chain), so the "with" figures
include the hash chain; at the end the chain is verified. Prints both and the ratio.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
# Production-like: DEBUG off (no query log kept in memory), plain HTTP on loopback.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402 - after the environment above

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

N = int(os.environ.get("BENCH_N", "400"))  # requests per mode
BLOCK = int(os.environ.get("BENCH_BLOCK", "10"))  # requests per mode before switching


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(app: str, port: int, database_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        # Hundreds of requests a minute from one token: the API's rate limits would refuse them.
        "API_RATE_LIMIT_PER_TOKEN": "",
        "API_RATE_LIMIT_PER_ADDRESS": "",
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--pythonpath",
            str(ROOT),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gunicorn {app} did not start")


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    servers = {}
    stop = threading.Event()
    sealing = None
    try:
        from decimal import Decimal

        from accounts.models import Role
        from audit.models import AuditLog
        from invoices.services import invoice_generate
        from leads.services import lead_create
        from tests.factories import make_token, make_user

        ports = {"with": free_port(), "without": free_port()}
        servers["with"] = start_gunicorn("planbeta.wsgi:application", ports["with"], database_url)
        servers["without"] = start_gunicorn(
            "bench.wsgi_without_audit:application", ports["without"], database_url
        )
        user = make_user(email="bench@example.com", role=Role.MARKETING)
        token = make_token(user)

        def invoice_ids(n, offset):
            ids = []
            for i in range(n):
                lead = lead_create(
                    actor=user,
                    name=f"Bench {offset + i}",
                    whatsapp=f"+9199{offset + i:08d}",
                    source="OTHER",
                )
                invoice = invoice_generate(
                    lead=lead,
                    currency="EUR",
                    items=[{"description": "A1", "amount": Decimal("134.00"), "level": "A1"}],
                    actor=user,
                )
                ids.append(invoice.pk)
            return ids

        def pay(mode, invoice_id):
            body = json.dumps({"paidAmount": "100.00", "idempotencyKey": f"bench-{uuid.uuid4()}"})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            conn = http.client.HTTPConnection("127.0.0.1", ports[mode], timeout=10)
            t0 = time.perf_counter()
            conn.request("POST", f"/api/invoices/{invoice_id}/pay-and-convert", body, headers)
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - t0) * 1000
            conn.close()
            assert response.status == 201, response.status
            return elapsed

        from audit import chain

        sealed = []

        def sealer():
            # Beat's sealer, every second instead of every AUDIT_SEAL_SECONDS: the most it costs.
            while not stop.wait(1.0):
                sealed.append(chain.seal_pending())
            connections.close_all()

        sealing = threading.Thread(target=sealer, daemon=True)
        sealing.start()
        warm = invoice_ids(40, 0)
        for i, invoice_id in enumerate(warm):
            pay("with" if i % 2 else "without", invoice_id)
        todo = invoice_ids(2 * N, 100)
        samples = {"with": [], "without": []}
        for start in range(0, 2 * N, 2 * BLOCK):
            samples["with"] += [pay("with", i) for i in todo[start : start + BLOCK]]
            samples["without"] += [
                pay("without", i) for i in todo[start + BLOCK : start + 2 * BLOCK]
            ]

        stop.set()
        sealing.join(30)
        sealing = None
        verified = chain.verify()
        rows = AuditLog.objects.filter(action="LEAD_TO_STUDENT_CONVERSION").count()
        print(
            f"PostgreSQL {connection.pg_version}; gunicorn, 1 sync worker per mode; "
            f"{N} pay-and-convert requests per mode over HTTP"
        )
        print(f"(LEAD_TO_STUDENT_CONVERSION rows written: {rows}, expected {N + len(warm) // 2})")
        print(
            f"(sealer: {len(sealed)} runs sealed {sum(sealed)} rows while the requests ran; chain "
            f"{'intact' if verified.intact else 'BROKEN'}, {verified.checked} seals)"
        )
        stats = {}
        for mode, values in samples.items():
            values.sort()
            stats[mode] = (
                statistics.mean(values),
                values[len(values) // 2],
                values[int(len(values) * 0.95)],
            )
            mean, p50, p95 = stats[mode]
            label = "with the 4 audit rows, sealed" if mode == "with" else "without audit rows"
            print(f"  {label:<31} mean {mean:6.2f} ms   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
        ratio_p50 = stats["with"][1] / stats["without"][1]
        ratio_mean = stats["with"][0] / stats["without"][0]
        print(
            f"  ratio with/without: p50 {ratio_p50:.3f} ({(ratio_p50 - 1) * 100:+.1f} %), "
            f"mean {ratio_mean:.3f} ({(ratio_mean - 1) * 100:+.1f} %)"
        )
    finally:
        stop.set()
        if sealing is not None:
            sealing.join(30)
        for process in servers.values():
            process.terminate()
            process.wait(timeout=10)
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
