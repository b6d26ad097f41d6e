"""What a flood of made-up bearer tokens on /api/system/health costs the database, before and
after unknown tokens were remembered (accounts.auth).

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/health_tokens.py

Creates (and drops) its own test database from DATABASE_URL's name and starts two gunicorn
servers on it (2 sync workers each, persistent database connections, as in production):

  * "before": API_TOKEN_UNKNOWN_CACHE_SECONDS=0 and HEALTH_TOKEN_MISSES_PER_MINUTE=0, which is
    the behaviour before: every bearer token shaped like ours is looked up in the database;
  * "after": the defaults (misses remembered for 60 s by the token's hash in the shared cache,
    and at most 60 lookups a minute on health that find nothing).

Both have the per-address probe limit off (API_RATE_LIMIT_PROBES=""), as for a flood from many
addresses: with it, one address gets 429s before any token is read. BENCH_CLIENTS (8) threads send
`GET /api/system/health` with `Authorization: Bearer pb_…` for BENCH_SECONDS (5) to one server,
then the other, BENCH_ROUNDS (3) times, in two floods: the same 20 made-up tokens over and over,
and a new made-up token on every request. Printed per flood and server: requests/s and the
database's committed + rolled-back transactions/s (pg_stat_database, read 11 s after each flood,
once every backend has reported), medians over the rounds, and the ratio. The health report
itself (its own connection, once per HEALTH_CACHE_SECONDS per worker) is in both figures alike,
and so, "after", are the 60 lookups a minute that the budget allows: a flood spends them in its
first second, so a 5 s flood shows a minute's worth.
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
HEALTH = "/api/system/health"


def made_up() -> str:
    # Shaped like a real token: one that is not is refused before and after without a lookup.
    return "pb_" + secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(dbname: str, extra: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    url = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path="/" + dbname)),
        "DB_CONN_MAX_AGE": "60",
        "API_RATE_LIMIT_PROBES": "",
        **extra,
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "planbeta.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--no-control-socket",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/system/livez", timeout=1)
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def transactions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            [connection.settings_dict["NAME"]],
        )
        return int(cursor.fetchone()[0])


def settled_transactions() -> int:
    # A backend reports its counters when it goes idle, at most once a second; what it could not
    # report then waits until it has been idle for 10 s (PostgreSQL 15, PGSTAT_IDLE_INTERVAL).
    time.sleep(11)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
    return transactions()


def flood(port: int, tokens: list[str] | None) -> tuple[float, float]:
    """Requests/s and database transactions/s of one flood."""
    counts = [0] * CLIENTS
    stop = 0.0  # set once the counters have settled

    def client(n: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            token = tokens[(n + i) % len(tokens)] if tokens else made_up()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{HEALTH}", headers={"Authorization": f"Bearer {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    response.read()
            except urllib.error.HTTPError as exc:
                exc.read()
            counts[n] += 1
            i += 1

    before = settled_transactions()
    t0 = time.perf_counter()
    stop = t0 + SECONDS
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    # This process's own two reads of the counter are transactions too; they are not the flood's.
    spent = settled_transactions() - before - 2
    return sum(counts) / elapsed, spent / elapsed


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    if not os.environ.get("REDIS_URL"):
        print("REDIS_URL is not set: each worker remembers misses in its own memory only.")
    old = setup_databases(verbosity=0, interactive=False)
    servers = {}
    try:
        dbname = connection.settings_dict["NAME"]
        connection.close()
        servers["before"] = start(
            dbname, {"API_TOKEN_UNKNOWN_CACHE_SECONDS": "0", "HEALTH_TOKEN_MISSES_PER_MINUTE": "0"}
        )
        servers["after"] = start(dbname, {})
        floods = {"same 20 made-up tokens": [made_up() for _ in range(20)], "a new one each": None}
        results: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {"before": [], "after": []} for name in floods
        }
        for round_ in range(ROUNDS):
            for name, tokens in floods.items():
                for label, (_, port) in servers.items():
                    results[name][label].append(flood(port, tokens))
            print(f"  round {round_ + 1}/{ROUNDS} done", file=sys.stderr)

        print(
            f"\nGET {HEALTH} with made-up bearer tokens through gunicorn (2 sync workers), "
            f"{CLIENTS} clients, {SECONDS:.0f} s per flood, median of {ROUNDS} rounds"
        )
        print(f"  {'flood':<26}{'server':<8}{'requests/s':>12}{'DB transactions/s':>20}")
        for name in floods:
            medians = {}
            for label in ("before", "after"):
                rps = statistics.median(r for r, _ in results[name][label])
                tps = statistics.median(t for _, t in results[name][label])
                medians[label] = tps
                print(f"  {name:<26}{label:<8}{rps:>12.0f}{tps:>20.1f}")
            ratio = medians["before"] / medians["after"] if medians["after"] > 0 else float("inf")
            print(f"  {'':<26}{'before/after':<20}{ratio:>20.1f}x fewer transactions")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)
        connections.close_all()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
