"""Pay-and-convert against its floor, and the new code against the code it replaced.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/pay_and_convert.py

Creates (and drops) its own database from DATABASE_URL's name. One fresh invoice is prepared per
conversion through the services. In one run it prints, side by side:

(a) the floor: the same rows written by hand through psycopg, nothing else in the way. The
    conversion's own statements (the invoice and its lead locked by one SELECT, the invoice and
    lead updates, the student-code upsert, the student, the payment, the four audit rows in one
    INSERT, one COMMIT), and the same with the idempotency record added (its claim committed on
    its own, its completion in the conversion's transaction), as the service must;
(b) the service as the API calls it: the invoice's few fields read, then
    payments.services.pay_and_convert, in this process;
(c) HTTP through gunicorn as deployed (deploy/gunicorn.conf.py: 3 sync workers, persistent
    database connections) for the code of BENCH_BASELINE (default: the commit this work started
    from, checked out in a temporary `git worktree`) and for this tree, one server each, same
    database: latency p50/p95 one request at a time, then requests per second with 16 clients at
    once, in alternating rounds (so load from elsewhere on the shared machine hits both alike),
    and during the concurrent rounds how many database connections wait on the student-counter
    row lock (pg_stat_activity sampled every few milliseconds).

Medians of repeated runs; ratios at the end. BENCH_N (default 200) conversions for (a) and (b)
and for the latency part of (c); BENCH_ROUNDS (5) x BENCH_BURST (120) requests per server for
the concurrent part.
"""

import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
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

import psycopg  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

N = int(os.environ.get("BENCH_N", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BURST = int(os.environ.get("BENCH_BURST", "120"))
CLIENTS = 16
# The last commit of main before pay-and-convert was cut down (issue 11, part 6).
BASELINE = os.environ.get("BENCH_BASELINE", "f45b042")
GIT = shutil.which("git") or "git"
SAMPLE_EVERY = 0.004  # seconds between two looks at pg_stat_activity


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def start_gunicorn(tree: Path, port: int, database_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        # Thousands of requests a minute from one token: the API's rate limits would refuse them.
        "API_RATE_LIMIT_PER_TOKEN": "",
        "API_RATE_LIMIT_PER_ADDRESS": "",
        # The tree's own packages first: the virtualenv's editable install points at this one.
        "PYTHONPATH": str(tree),
        # Each server warns once per worker that collectstatic never ran; not what is measured.
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(tree / "deploy" / "gunicorn.conf.py"),
            "--no-control-socket",
            "--access-logfile",
            "/dev/null",
            "--log-level",
            "warning",
        ],
        cwd=tree,
        env=env,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gunicorn in {tree} did not start")


def services_module_of(tree: Path) -> str:
    """Where a server started in `tree` imports the payments app from (a check, not a guess)."""
    return subprocess.run(
        [sys.executable, "-c", "import payments; print(payments.__file__)"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class LockSampler:
    """Counts, every few milliseconds, the connections of the bench database that are active
    and those waiting for a lock held on the student counter's row (a waiter's query is the
    counter's statement, whichever spelling of it the code uses)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LockSampler":
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.wait(SAMPLE_EVERY):
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE state = 'active'),"
                    " count(*) FILTER (WHERE wait_event_type = 'Lock'"
                    "   AND query LIKE '%%payments_studentcounter%%')"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                ).fetchone()
                self.samples.append((row[0], row[1]))

    def waiting(self) -> float:
        return statistics.mean(w for _, w in self.samples) if self.samples else 0.0

    def active(self) -> float:
        return statistics.mean(a for a, _ in self.samples) if self.samples else 0.0


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    db = connection.settings_dict
    conninfo = (
        f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} "
        f"user={db['USER']} dbname={db['NAME']}"
    )
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    baseline_tree = Path(tempfile.mkdtemp(prefix="planbeta-baseline-"))
    servers: dict[str, subprocess.Popen] = {}
    try:
        subprocess.run(  # noqa: S603 - git, our own arguments
            [GIT, "worktree", "add", "--detach", "--force", str(baseline_tree), BASELINE],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        run(conninfo, database_url, baseline_tree, servers)
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=30)
        subprocess.run(  # noqa: S603 - git, our own arguments
            [GIT, "worktree", "remove", "--force", str(baseline_tree)],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
        connections.close_all()
        teardown_databases(old, verbosity=0)


def run(conninfo, database_url, baseline_tree, servers):
    from accounts.models import Role
    from audit.context import audit_context
    from audit.models import AuditLog, Source
    from invoices.selectors import invoice_for_payment
    from invoices.services import invoice_generate
    from leads.services import lead_create
    from payments.models import Student
    from payments.services import pay_and_convert
    from tests.factories import make_token, make_user

    for tree in (baseline_tree, ROOT):
        where = services_module_of(tree)
        assert where.startswith(str(tree)), f"{tree} would import {where}"

    user = make_user(email="bench@example.com", role=Role.MARKETING)
    token = make_token(user)
    serial = iter(range(10**9))

    def invoice_ids(n):
        ids = []
        for _ in range(n):
            i = next(serial)
            lead = lead_create(
                actor=user, name=f"Bench {i}", whatsapp=f"+9199{i:08d}", source="OTHER"
            )
            invoice = invoice_generate(
                lead=lead,
                currency="EUR",
                items=[{"description": "A1", "amount": Decimal("134.00"), "level": "A1"}],
                actor=user,
            )
            ids.append(invoice.pk)
        return ids

    # (a) the floor ---------------------------------------------------------------------------
    audit_fields = [f for f in AuditLog._meta.concrete_fields if not f.primary_key]
    audit_columns = ", ".join(f'"{f.column}"' for f in audit_fields)
    audit_values = ", ".join(["(" + ", ".join(["%s"] * len(audit_fields)) + ")"] * 4)
    audit_sql = f"INSERT INTO audit_auditlog ({audit_columns}) VALUES {audit_values}"
    body_bytes = 1800  # about the size of the stored answer of a conversion

    def audit_params(invoice_id, i):
        now = datetime.datetime.now(datetime.UTC)
        params = []
        for action in ("LEAD_TO_STUDENT_CONVERSION", "PAYMENT_RECEIVED", "STUDENT_CREATED", "X"):
            row = {
                "action": action,
                "severity": "INFO",
                "description": f"Bench {i} converted on invoice {invoice_id}: paid EUR 100.00",
                "source": Source.REQUEST,
                "user_id": user.pk,
                "user_email": user.email,
                "user_name": user.name,
                "user_role": user.role,
                "ip_address": "127.0.0.1",
                "user_agent": "bench",
                "request_path": f"/api/invoices/{invoice_id}/pay-and-convert",
                "request_method": "POST",
                "request_id": uuid.uuid4().hex,
                "entity_type": "Invoice",
                "entity_id": str(invoice_id),
                "metadata": psycopg.types.json.Jsonb(
                    {"invoiceId": invoice_id, "paidAmount": "100.00", "pad": "x" * 300}
                ),
                "error_message": "",
                "error_stack": "",
                "created_at": now,
                "spool_id": None,
            }
            params += [row[f.column] for f in audit_fields]
        return params

    def floor(raw, invoice_id, i, *, idempotency):
        now = datetime.datetime.now(datetime.UTC)
        audit = audit_params(invoice_id, i)
        key = f"floor-{uuid.uuid4()}"
        t0 = time.perf_counter()
        if idempotency:
            # An autocommit INSERT: the claim commits on its own, in one round trip.
            raw.execute(
                "INSERT INTO payments_idempotencyrecord (key, operation, invoice_id,"
                " request_hash, state, claim_token, claimed_at)"
                " VALUES (%s, 'pay_and_convert', %s, %s, 'IN_FLIGHT', %s, %s) RETURNING id",
                [key, invoice_id, "0" * 64, "0" * 32, now],
            )
        with raw.transaction():
            lead_id, total, paid = raw.execute(
                "SELECT l.id, i.total_amount, i.paid_amount FROM invoices_invoice i"
                " JOIN leads_lead l ON l.id = i.lead_id WHERE i.id = %s FOR UPDATE",
                [invoice_id],
            ).fetchone()
            raw.execute(
                "UPDATE invoices_invoice SET paid_amount = %s, status = 'PARTIALLY_PAID',"
                " updated_at = %s WHERE id = %s",
                [paid + Decimal("100.00"), now, invoice_id],
            )
            raw.execute(
                "UPDATE leads_lead SET converted = true, converted_at = %s,"
                " status = 'CONVERTED', updated_at = %s WHERE id = %s",
                [now, now, lead_id],
            )
            (number,) = raw.execute(
                "INSERT INTO payments_studentcounter (year, last_number) VALUES (%s, 1)"
                " ON CONFLICT (year) DO UPDATE SET"
                " last_number = payments_studentcounter.last_number + 1 RETURNING last_number",
                [now.year],
            ).fetchone()
            (student_id,) = raw.execute(
                "INSERT INTO payments_student (student_code, lead_id, name, email, whatsapp,"
                " level, currency, total_amount, total_paid, payment_status, created_at,"
                " updated_at) VALUES (%s, %s, %s, '', %s, 'A1', 'EUR', %s, %s, 'PARTIAL', %s, %s)"
                " RETURNING id",
                [
                    f"FLR-{now.year}-{number:05d}",
                    lead_id,
                    f"Bench {i}",
                    f"+9188{i:08d}",
                    total,
                    Decimal("100.00"),
                    now,
                    now,
                ],
            ).fetchone()
            raw.execute(
                "INSERT INTO payments_payment (student_id, invoice_id, amount, currency, method,"
                " transaction_id, status, paid_at, paid_on, recorded_by_id, idempotency_key,"
                " created_at) VALUES (%s, %s, %s, 'EUR', 'BANK_TRANSFER', '', 'COMPLETED', %s,"
                " %s, %s, %s, %s) RETURNING id",
                [student_id, invoice_id, Decimal("100.00"), now, now.date(), user.pk, key, now],
            ).fetchone()
            raw.execute(audit_sql, audit)
            if idempotency:
                raw.execute(
                    "UPDATE payments_idempotencyrecord SET state = 'COMPLETED', status_code = 201,"
                    " response_body = %s, completed_at = %s WHERE key = %s",
                    [psycopg.types.json.Jsonb({"body": "x" * body_bytes}), now, key],
                )
        return (time.perf_counter() - t0) * 1000

    def service(invoice_id):
        t0 = time.perf_counter()
        with audit_context(source=Source.REQUEST):
            answer = pay_and_convert(
                invoice=invoice_for_payment(invoice_id),
                amount=Decimal("100.00"),
                idempotency_key=f"service-{uuid.uuid4()}",
                actor=user,
            )
        elapsed = (time.perf_counter() - t0) * 1000
        assert answer.status_code == 201
        return elapsed

    in_process = {"floor": [], "floor + idempotency record": [], "service": []}
    with psycopg.connect(conninfo, autocommit=True) as raw:
        todo = invoice_ids(3 * N + 30)
        for k, invoice_id in enumerate(todo[:30]):  # warm both
            if k % 2:
                floor(raw, invoice_id, next(serial), idempotency=True)
            else:
                service(invoice_id)
        rest = todo[30:]
        for k in range(N):  # interleaved, so that load from elsewhere hits all three alike
            a, b, c = rest[3 * k : 3 * k + 3]
            in_process["floor"].append(floor(raw, a, next(serial), idempotency=False))
            in_process["floor + idempotency record"].append(
                floor(raw, b, next(serial), idempotency=True)
            )
            in_process["service"].append(service(c))

    # (c) HTTP -------------------------------------------------------------------------------
    ports = {"before": free_port(), "after": free_port()}
    servers["before"] = start_gunicorn(baseline_tree, ports["before"], database_url)
    servers["after"] = start_gunicorn(ROOT, ports["after"], database_url)

    def pay(mode, invoice_id):
        body = json.dumps({"paidAmount": "100.00", "idempotencyKey": f"bench-{uuid.uuid4()}"})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        conn = http.client.HTTPConnection("127.0.0.1", ports[mode], timeout=30)
        t0 = time.perf_counter()
        conn.request("POST", f"/api/invoices/{invoice_id}/pay-and-convert", body, headers)
        response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - t0) * 1000
        conn.close()
        assert response.status == 201, (mode, response.status)
        return elapsed

    def burst(mode, ids):
        queue = list(ids)
        lock = threading.Lock()

        def client():
            while True:
                with lock:
                    if not queue:
                        return
                    invoice_id = queue.pop()
                pay(mode, invoice_id)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len(ids) / (time.perf_counter() - t0)

    warm = invoice_ids(60)
    for k, invoice_id in enumerate(warm):  # every worker of both servers connected and warm
        pay("before" if k % 2 else "after", invoice_id)
    latency = {"before": [], "after": []}
    todo = invoice_ids(2 * N)
    for k in range(0, 2 * N, 20):
        latency["before"] += [pay("before", i) for i in todo[k : k + 10]]
        latency["after"] += [pay("after", i) for i in todo[k + 10 : k + 20]]

    rps = {"before": [], "after": []}
    waiting = {"before": [], "after": []}
    active = {"before": [], "after": []}
    sampler = LockSampler(conninfo)
    for _ in range(ROUNDS):
        for mode in ("before", "after"):
            ids = invoice_ids(BURST)
            with sampler:
                rps[mode].append(burst(mode, ids))
            waiting[mode].append(sampler.waiting())
            active[mode].append(sampler.active())

    converted = Student.objects.exclude(student_code__startswith="FLR-").count()
    expected = 15 + N + 60 + 2 * N + 2 * ROUNDS * BURST

    # Report ----------------------------------------------------------------------------------
    print(
        f"PostgreSQL {connection.pg_version}; {os.cpu_count()} cores, shared; baseline "
        f"{BASELINE} (git worktree) against this tree"
    )
    print(f"(a)/(b) in this process, {N} conversions each, interleaved; milliseconds")
    for label, values in in_process.items():
        print(f"  {label:<28} p50 {statistics.median(values):6.2f}   p95 {pct(values, 0.95):6.2f}")
    floor_p50 = statistics.median(in_process["floor"])
    floor_idem_p50 = statistics.median(in_process["floor + idempotency record"])
    service_p50 = statistics.median(in_process["service"])
    print(
        f"  service / floor: {service_p50 / floor_p50:.2f}x   "
        f"service / (floor + idempotency record): {service_p50 / floor_idem_p50:.2f}x"
    )
    print(
        f"(c) HTTP through gunicorn (deploy/gunicorn.conf.py: 3 sync workers each); "
        f"one request at a time, {N} per server, milliseconds"
    )
    for mode in ("before", "after"):
        values = latency[mode]
        print(f"  {mode:<7} p50 {statistics.median(values):6.2f}   p95 {pct(values, 0.95):6.2f}")
    p50_ratio = statistics.median(latency["before"]) / statistics.median(latency["after"])
    print(f"  before / after p50: {p50_ratio:.2f}x")
    print(
        f"    {CLIENTS} clients at once, {ROUNDS} rounds of {BURST} requests per server "
        "(median over rounds); connections sampled every "
        f"{SAMPLE_EVERY * 1000:.0f} ms: active, and waiting on the student-counter row lock"
    )
    for mode in ("before", "after"):
        print(
            f"  {mode:<7} {statistics.median(rps[mode]):6.1f} requests/s   "
            f"(rounds {', '.join(f'{r:.0f}' for r in rps[mode])})   "
            f"active {statistics.median(active[mode]):4.2f}, "
            f"waiting on the counter {statistics.median(waiting[mode]):4.2f}"
        )
    print(
        f"  after / before requests/s: "
        f"{statistics.median(rps['after']) / statistics.median(rps['before']):.2f}x"
    )
    print(f"(students converted by the service and over HTTP: {converted}, expected {expected})")


if __name__ == "__main__":
    main()
