"""What the audit trail costs pay-and-convert, measured through HTTP on PostgreSQL.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/pay_and_convert.py

Creates (and drops) its own database from DATABASE_URL's name, starts Django's threaded live
server on 127.0.0.1, prepares one invoice per request through the services, then POSTs
/api/invoices/{id}/pay-and-convert with a Bearer token — alternately in blocks with the four
business audit rows written (production) and with them switched off through the
BENCH_WITHOUT_BUSINESS_AUDIT setting, which only this process sets. Prints both and the ratio.
"""

import http.client
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
# Production-like: DEBUG off (no query log kept in memory), plain HTTP on loopback.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402
from django.test.utils import override_settings, setup_databases, teardown_databases  # noqa: E402

N = int(os.environ.get("BENCH_N", "400"))  # requests per mode
BLOCK = int(os.environ.get("BENCH_BLOCK", "10"))  # requests per mode before switching


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    server = LiveServerThread("127.0.0.1", lambda handler: handler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        from decimal import Decimal

        from accounts.models import Role
        from audit.models import AuditLog
        from invoices.services import invoice_generate
        from leads.services import lead_create
        from tests.factories import make_token, make_user

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

        def pay(invoice_id):
            body = json.dumps({"paidAmount": "100.00", "idempotencyKey": f"bench-{uuid.uuid4()}"})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            t0 = time.perf_counter()
            conn.request("POST", f"/api/invoices/{invoice_id}/pay-and-convert", body, headers)
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - t0) * 1000
            conn.close()
            assert response.status == 201, response.status
            return elapsed

        warm = invoice_ids(40, 0)
        for invoice_id in warm:
            pay(invoice_id)
        todo = invoice_ids(2 * N, 100)
        samples = {"with": [], "without": []}
        for start in range(0, 2 * N, 2 * BLOCK):
            with_ids = todo[start : start + BLOCK]
            without_ids = todo[start + BLOCK : start + 2 * BLOCK]
            samples["with"] += [pay(i) for i in with_ids]
            with override_settings(BENCH_WITHOUT_BUSINESS_AUDIT=True):
                samples["without"] += [pay(i) for i in without_ids]

        rows = AuditLog.objects.filter(action="LEAD_TO_STUDENT_CONVERSION").count()
        print(
            f"PostgreSQL {connection.pg_version}; {N} pay-and-convert requests per mode over HTTP"
        )
        print(f"(LEAD_TO_STUDENT_CONVERSION rows written: {rows}, expected {N + len(warm)})")
        stats = {}
        for mode, values in samples.items():
            values.sort()
            stats[mode] = (
                statistics.mean(values),
                values[len(values) // 2],
                values[int(len(values) * 0.95)],
            )
            mean, p50, p95 = stats[mode]
            label = "with the 4 audit rows" if mode == "with" else "without audit rows"
            print(f"  {label:<24} mean {mean:6.2f} ms   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
        ratio_p50 = stats["with"][1] / stats["without"][1]
        ratio_mean = stats["with"][0] / stats["without"][0]
        print(
            f"  ratio with/without: p50 {ratio_p50:.3f} ({(ratio_p50 - 1) * 100:+.1f} %), "
            f"mean {ratio_mean:.3f} ({(ratio_mean - 1) * 100:+.1f} %)"
        )
    finally:
        server.terminate()
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
