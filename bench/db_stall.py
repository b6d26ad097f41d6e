"""How long a request waits for its 503 when the database stalls, through real gunicorn.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/db_stall.py

Creates (and drops) its own database from DATABASE_URL's name, puts a TCP proxy
(tests/dbproxy.py) between a gunicorn sync worker and PostgreSQL, and uses the production
defaults (DB_CALL_DEADLINE 6 s, DB_CONNECT_TIMEOUT 2 s, HEALTH_READY_TIMEOUT_MS 900). Prints the
distribution of the time to the answer for:
  * pay-and-convert whose database stalls at the payment INSERT (mid-transaction);
  * a request arriving after the database froze (kept-alive connection dead, new ones unanswered);
  * pay-and-convert whose connection is dropped at the payment INSERT (a restart);
  * readyz and the health check against the frozen database (a server that accepts TCP and
    never speaks), side by side.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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

N = int(os.environ.get("BENCH_N", "10"))  # stalled requests per scenario (each takes seconds)
PAYMENT_INSERT = b'INSERT INTO "payments_payment"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=60.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers={"Host": "127.0.0.1", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def start_gunicorn(port: int, database_url: str, spool_dir: str, log) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CI")},
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "AUDIT_SPOOL_DIR": spool_dir,
        "LOG_LEVEL": "CRITICAL",
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--no-control-socket", "--access-logfile", "/dev/null"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(200):
        try:
            if request(port, "GET", "/api/system/livez", timeout=1)[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def summary(label: str, samples: list[tuple[int, float]]) -> None:
    statuses = sorted({status for status, _ in samples})
    values = sorted(seconds for _, seconds in samples)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    print(
        f"  {label:<58} n={len(values):<3} status {','.join(map(str, statuses)):<8}"
        f" min {values[0]:5.2f} s  p50 {statistics.median(values):5.2f} s"
        f"  p95 {p95:5.2f} s  max {values[-1]:5.2f} s"
    )


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    db = connection.settings_dict
    process = None
    proxy = None
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "gunicorn.log", "w")  # noqa: SIM115 - closed below
        try:
            from accounts.models import Role
            from tests.dbproxy import DatabaseProxy
            from tests.factories import make_token, make_user
            from tests.money_factories import make_invoice

            proxy = DatabaseProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
            port = free_port()
            database_url = f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"
            process = start_gunicorn(port, database_url, str(Path(tmp) / "spool"), log)
            user = make_user(email="bench@example.com", role=Role.MARKETING)
            auth = {"Authorization": f"Bearer {make_token(user)}"}
            json_auth = {**auth, "Content-Type": "application/json"}

            def pay(invoice):
                body = json.dumps({"paidAmount": "100.00", "idempotencyKey": uuid.uuid4().hex})
                path = f"/api/invoices/{invoice.pk}/pay-and-convert"
                return request(port, "POST", path, body, json_auth)

            def warm():
                # A kept-alive connection in the worker, as in production between requests.
                assert request(port, "GET", "/api/invoices", headers=auth)[0] == 200

            stalled, frozen, dropped, ready, health = [], [], [], [], []
            for _ in range(N):
                invoice = make_invoice(actor=user)
                warm()
                proxy.stall_on(PAYMENT_INSERT)
                stalled.append(pay(invoice))
                proxy.resume()

                warm()
                proxy.stall()
                frozen.append(request(port, "GET", "/api/invoices", headers=auth))
                ready.append(request(port, "GET", "/api/system/readyz"))
                health.append(request(port, "GET", "/api/system/health"))
                proxy.resume()

                invoice = make_invoice(actor=user)
                warm()
                proxy.drop_on(PAYMENT_INSERT)
                dropped.append(pay(invoice))
                proxy.resume()

            print(
                f"PostgreSQL {connection.pg_version}; gunicorn, 1 sync worker, production "
                "defaults (DB_CALL_DEADLINE 6 s, DB_CONNECT_TIMEOUT 2 s, readyz 0.9 s); "
                "time to the answer over HTTP"
            )
            summary("pay-and-convert, database stalls at the payment INSERT", stalled)
            summary("request after the database froze (kept-alive conn dead)", frozen)
            summary("pay-and-convert, connection dropped at the payment INSERT", dropped)
            summary("readyz, database frozen (accepts TCP, never answers)", ready)
            summary("health, database frozen (its 2 s connect timeout)", health)
            ratio = statistics.median(s for _, s in health) / statistics.median(s for _, s in ready)
            print(f"  readyz answers {ratio:.1f}x sooner than the health check's database probe")
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=20)
            if proxy is not None:
                proxy.close()
            log.close()
            connections.close_all()
            teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
