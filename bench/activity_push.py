"""What an open activity dashboard costs the server: polling against the live stream, side by side.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/activity_push.py

Creates (and drops) its own test database from DATABASE_URL's name, fills BENCH_ROWS audit rows
(default 100,000), and serves it with real gunicorn twice, as production does: `web`
(deploy/gunicorn.conf.py, sync workers) and `events` (deploy/gunicorn_events.conf.py, threads).
Then, with BENCH_TABS open dashboards (default 5):

  * polling: what one poll cycle costs (the feed's `after` read plus the statistics, as the page
    sends them every ACTIVITY_POLL_SECONDS), in server CPU and database transactions, and so per
    tab and hour at the page's interval, whether anything happens or not;
  * push: the tabs' streams held open and idle for BENCH_IDLE_SECONDS (default 30): server CPU and
    database transactions per tab and hour while nothing happens; then BENCH_COMMITS commits
    (default 40), each timed from its COMMIT to the `audit` event at every tab (p50, p95, max).
    Each event makes the page read once (one poll cycle without the statistics), so with push a
    tab costs that read per burst of commits instead of a cycle every ten seconds.

CPU is the gunicorn processes' user+system time (/proc); transactions are pg_stat_database's
xact_commit + xact_rollback of the bench database, the bench's own reads of it subtracted.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from audit import timeline  # noqa: E402
from tests.gunicorn import free_port, http_request, serving  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
TABS = int(os.environ.get("BENCH_TABS", "5"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "30"))
COMMITS = int(os.environ.get("BENCH_COMMITS", "40"))
POLL_CYCLES = int(os.environ.get("BENCH_POLL_CYCLES", "60"))
POLL_SECONDS = float(settings.ACTIVITY_POLL_SECONDS)
TICKS = os.sysconf("SC_CLK_TCK")


def fill(rows: int) -> None:
    with connection.cursor() as cursor:
        # Past times written now, in time order: on time rows, not late ones (audit.timeline).
        cursor.execute(timeline.PAUSE_LATE)
        cursor.execute(
            """
            INSERT INTO audit_auditlog (action, severity, description, source, user_id,
                user_email, user_name, user_role, user_agent, request_path, request_method,
                request_id, entity_type, entity_id, metadata, error_message, error_stack,
                created_at)
            SELECT CASE WHEN g %% 10 = 0 THEN 'LOGIN' ELSE 'LEAD_UPDATED' END,
                   CASE WHEN g %% 40 = 0 THEN 'ERROR' ELSE 'INFO' END,
                   'Lead ' || g || ' updated', 'REQUEST', 1 + g %% 7,
                   'staff' || g %% 7 || '@planbeta.example', 'Staff', 'MARKETING', 'bench',
                   '/api/leads/' || g, 'PATCH', md5(g::text), 'Lead', (g %% 5000)::text,
                   '{}'::jsonb, '', '', now() - (%s - g) * interval '1 second'
            FROM generate_series(1, %s) AS g
            """,
            [rows, rows],
        )
        cursor.execute(timeline.RESUME_LATE)
        cursor.execute("VACUUM ANALYZE")
        # Autovacuum's own transactions would count as the tabs': it is off for the bench's tables.
        cursor.execute(
            "SELECT format('ALTER TABLE %I.%I SET (autovacuum_enabled = false)', n.nspname,"
            " c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname = 'public'"
        )
        for (statement,) in cursor.fetchall():
            cursor.execute(statement)


def transactions() -> int:
    """Transactions of the bench database so far (the statistics flushed first)."""
    time.sleep(1.2)  # backends flush their counters at most once a second (PostgreSQL 15)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            [connection.settings_dict["NAME"]],
        )
        (count,) = cursor.fetchone()
    connection.close()  # the bench's own connection is not a tab's cost
    return int(count)


def cpu_seconds(port: int) -> float:
    """User+system time of the gunicorn master listening on `port` and of its workers."""
    masters = [
        proc.parent.name
        for proc in Path("/proc").glob("[0-9]*/cmdline")
        if b"gunicorn" in (cmd := _read(proc)) and f"127.0.0.1:{port}".encode() in cmd
    ]
    pids = set(masters)
    for pid in masters:
        pids.update(_read(Path(f"/proc/{pid}/task/{pid}/children")).decode().split())
    total = 0
    for pid in pids:
        stat = _read(Path(f"/proc/{pid}/stat")).decode()
        if stat:
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return b""


def measure(port: int, work) -> tuple[float, int, float]:
    """(server CPU s, database transactions, wall s) spent by `work()`, less the measuring's own."""
    xacts, cpu, t0 = transactions(), cpu_seconds(port), time.perf_counter()
    work()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(port) - cpu
    return cpu, transactions() - xacts - _own_transactions(), wall


_own: list[int] = []


def _own_transactions() -> int:
    """What one transactions() call adds itself (its connection's set-up included)."""
    if not _own:
        first = transactions()
        _own.append(transactions() - first)
    return _own[0]


class Tab(threading.Thread):
    """One dashboard's stream: records when each `audit` event arrives."""

    def __init__(self, port: int, cookie: str) -> None:
        super().__init__(daemon=True)
        self.port, self.cookie = port, cookie
        self.ready = threading.Event()
        self.arrivals: list[float] = []
        self.arrived = threading.Condition()
        self.conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        self.conn.request("GET", "/dashboard/activity/events",
                          headers={"Host": "127.0.0.1", "Cookie": self.cookie})  # fmt: skip
        response = self.conn.getresponse()
        assert response.status == 200, response.status
        # Ends when the bench closes the connection: this tab is done.
        with contextlib.suppress(OSError, AttributeError, ValueError):
            self._read(response)

    def _read(self, response: http.client.HTTPResponse) -> None:
        while line := response.readline():
            if line == b"event: ready\n":
                self.ready.set()
            elif line == b"event: audit\n":
                with self.arrived:
                    self.arrivals.append(time.perf_counter())
                    self.arrived.notify_all()

    def wait_for(self, count: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.arrivals) >= count, 30), "no event"


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from accounts.models import Role, User
        from audit.models import Action, AuditLog
        from audit.services import AuditEntry, audit_record

        fill(ROWS)
        founder = User.objects.create_user(
            "bench-founder@planbeta.example", "bench-password-123", name="Bench", role=Role.FOUNDER
        )
        client = Client()
        client.force_login(founder)
        name = settings.SESSION_COOKIE_NAME
        cookie = f"{name}={client.cookies[name].value}"
        db = connection.settings_dict
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("DEBUG", "PROMETHEUS_MULTIPROC_DIR")
            },
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            "GUNICORN_ACCESSLOG": "",
        }
        logs = Path(tempfile.mkdtemp(prefix="bench-activity-push-"))
        newest = AuditLog.objects.order_by("-id").values_list("id", flat=True).first()
        connection.close()
        headers = {"Cookie": cookie, "Accept": "application/json"}
        feed = f"/api/system/audit-logs?after={newest - 100}&limit=200"
        stats = "/api/system/audit-logs?type=stats"

        with serving(env, logs / "bench-web.log", workers=2) as web:

            def poll_cycles() -> None:
                for _ in range(POLL_CYCLES):
                    assert http_request(web, "GET", feed, headers=headers)[0] == 200
                    assert http_request(web, "GET", stats, headers=headers)[0] == 200

            def feed_reads() -> None:
                for _ in range(POLL_CYCLES):
                    assert http_request(web, "GET", feed, headers=headers)[0] == 200

            poll_cpu, poll_xacts, poll_wall = measure(web, poll_cycles)
            read_cpu, read_xacts, _ = measure(web, feed_reads)

        with serving(env, logs / "bench-events.log", workers=1,
                     config="deploy/gunicorn_events.conf.py") as events:  # fmt: skip
            # The same wait with no tab open: the process's and the database's own activity
            # (gunicorn's main loop, autovacuum), which is no tab's cost.
            base_cpu, base_xacts, base_wall = measure(events, lambda: time.sleep(IDLE_SECONDS))
            tabs = [Tab(events, cookie) for _ in range(TABS)]
            for tab in tabs:
                tab.start()
            for tab in tabs:
                assert tab.ready.wait(30), "stream did not open"
            idle_cpu, idle_xacts, idle_wall = measure(events, lambda: time.sleep(IDLE_SECONDS))

            latencies: list[float] = []
            for n in range(1, COMMITS + 1):
                with transaction.atomic():
                    audit_record(AuditEntry(Action.LEAD_CREATED, description=f"bench {n}"))
                committed = time.perf_counter()
                for tab in tabs:
                    tab.wait_for(n)
                    latencies.append((tab.arrivals[n - 1] - committed) * 1000)
                time.sleep(0.3)  # apart, so that each commit is an event of its own
            connection.close()
            for tab in tabs:
                if tab.conn is not None:
                    tab.conn.close()

        per_hour = 3600 / POLL_SECONDS
        print(f"\nActivity dashboard: polling vs live stream ({ROWS:,} audit rows, {TABS} tabs)")
        print(f"  poll cycle (feed read + statistics), {POLL_CYCLES} cycles through gunicorn:")
        print(f"    {poll_wall / POLL_CYCLES * 1000:7.2f} ms wall, "
              f"{poll_cpu / POLL_CYCLES * 1000:7.2f} ms server CPU, "
              f"{poll_xacts / POLL_CYCLES:5.1f} DB transactions per cycle")  # fmt: skip
        print(f"    one tab polling every {POLL_SECONDS:g} s: "
              f"{per_hour:.0f} cycles/h = {poll_cpu / POLL_CYCLES * per_hour:6.2f} s CPU/h, "
              f"{poll_xacts / POLL_CYCLES * per_hour:6.0f} DB transactions/h,"
              " idle or not")  # fmt: skip
        print(f"  a read after an event (feed only): {read_cpu / POLL_CYCLES * 1000:7.2f} ms CPU, "
              f"{read_xacts / POLL_CYCLES:5.1f} DB transactions")  # fmt: skip
        idle_per_tab_hour = max(idle_cpu / idle_wall - base_cpu / base_wall, 0) / TABS * 3600
        stream_xacts_hour = (idle_xacts / idle_wall - base_xacts / base_wall) * 3600
        poll_xacts_hour = poll_xacts / POLL_CYCLES * per_hour * TABS
        print(
            f"  live stream, {TABS} tabs idle for {idle_wall:.0f} s, less the same wait with none:"
        )
        print(f"    {idle_per_tab_hour:6.3f} s CPU/h per tab; the database: "
              f"{stream_xacts_hour:,.0f} transactions/h for all {TABS} tabs together "
              f"(polling: {poll_xacts_hour:,.0f}/h); with no tab {base_xacts} transactions and "
              f"{base_cpu:.2f} s CPU in {base_wall:.0f} s")  # fmt: skip
        q = statistics.quantiles(latencies, n=20)
        print(f"  commit -> event at the tab, {COMMITS} commits x {TABS} tabs: "
              f"p50 {statistics.median(latencies):.1f} ms, p95 {q[18]:.1f} ms, "
              f"max {max(latencies):.1f} ms")  # fmt: skip
        saved = poll_cpu / POLL_CYCLES * per_hour / max(idle_per_tab_hour, 1e-6)
        print(f"  idle tab: polling costs {saved:,.0f}x the CPU of a stream")
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    free_port()  # fails early if the loopback is unusable
    main()
