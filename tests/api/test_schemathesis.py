"""The API against its own OpenAPI schema, with schemathesis: every check, every phase
(examples, coverage, fuzzing, stateful), no 5xx answer and no failed check allowed.

A server on 127.0.0.1 (one thread and one database connection, as a gunicorn worker) serves the
app on the test database; the schemathesis CLI runs against it once with a founder's token (every
phase) and once with a marketing token (the coverage phase's boundary cases are the founder's
again, so that pass skips them). Generation is deterministic, the same cases every run, and the
number of examples is bounded (tests/api/schemathesis.toml). The figures are printed:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta REDIS_URL=redis://127.0.0.1:6379/15 \
        bash scripts/test.sh tests/api/test_schemathesis.py -q
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.db.backends.signals import connection_created

from accounts.models import Role
from tests.factories import make_lead, make_token, make_user
from tests.money_factories import make_converted_invoice, make_invoice

CONFIG = Path(__file__).with_name("schemathesis.toml")
CLI = Path(sys.executable).with_name("schemathesis")
EXAMPLES = 5  # per operation and phase; the coverage phase adds its own boundary cases


@dataclass
class Figures:
    persona: str
    cases: int
    requests: int
    server_errors: int
    schema_violations: int
    failures: list[dict]
    seconds: float
    client_cpu: float
    server_cpu: float
    summary: str

    def line(self) -> str:
        return (
            f"schemathesis as {self.persona}: {self.cases} cases, {self.requests} requests, "
            f"{self.server_errors} answers 5xx, {self.schema_violations} schema violations, "
            f"{sum(f['count'] for f in self.failures)} failed checks; {self.seconds:.1f} s "
            f"(CPU: schemathesis {self.client_cpu:.1f} s, server {self.server_cpu:.1f} s)"
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_schemathesis(
    base_url: str, token: str, persona: str, reports: Path, *, examples: int, phases: str
) -> Figures:
    reports.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # The server runs in this process; the CLI is a child. On a busy machine the wall time says
    # little, so both CPU times are printed too.
    server_cpu = time.process_time()
    client_cpu = _children_cpu()
    done = subprocess.run(
        [
            str(CLI),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{base_url}/api/schema",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--max-examples",
            str(examples),
            "--phases",
            phases,
            "--report",
            "json,har",
            "--report-dir",
            str(reports),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.monotonic() - started
    server_cpu = time.process_time() - server_cpu
    client_cpu = _children_cpu() - client_cpu
    report = json.loads(next(reports.glob("json-*.json")).read_text())
    har = json.loads(next(reports.glob("har-*.json")).read_text())
    statuses = [entry["response"]["status"] for entry in har["log"]["entries"]]
    failures = report["failures"]
    return Figures(
        persona=persona,
        cases=report["test_cases"]["generated"],
        requests=len(statuses),
        server_errors=sum(1 for s in statuses if s >= 500),
        schema_violations=sum(f["count"] for f in failures if f["code"] == "ST108"),
        failures=failures,
        seconds=seconds,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        summary=done.stdout[-20000:] + done.stderr[-5000:],
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _no_fsync_per_commit(sender, connection, **kwargs) -> None:
    # The run commits a few thousand small transactions; waiting for each to reach the disk
    # would be most of its time, and a test database has nothing to keep.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")


@pytest.fixture
def server() -> Iterator[str]:
    httpd: WSGIServer = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_QuietHandler)

    def serve() -> None:
        connection_created.connect(_no_fsync_per_commit)
        try:
            httpd.serve_forever(poll_interval=0.05)
        finally:
            connection_created.disconnect(_no_fsync_per_commit)
            connections.close_all()  # this thread's connections, before the test database goes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(10)
        httpd.server_close()


@pytest.fixture
def api_data(db):
    founder = make_user(email="fuzz-founder@example.com", role=Role.FOUNDER)
    marketing = make_user(email="fuzz-marketing@example.com", role=Role.MARKETING)
    # Something for the lists to show; the stateful phase makes its own leads and invoices.
    make_lead()
    make_invoice(actor=marketing)
    make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    return {"founder": make_token(founder), "marketing": make_token(marketing)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_api_keeps_to_its_schema(server, api_data, settings, tmp_path, capsys):
    # The limits are tested on their own (test_rate_limits.py); here they would only turn the
    # second half of the run into 429s.
    settings.API_RATE_LIMIT_PER_TOKEN = ""
    settings.API_RATE_LIMIT_PER_ADDRESS = ""

    # The founder reaches every operation, in every phase. Marketing may do the same except read
    # the audit log: its pass skips the coverage phase (the same boundary cases again) and is
    # about the answers that differ for that role.
    passes = [
        ("founder", EXAMPLES, "examples,coverage,fuzzing,stateful"),
        ("marketing", 3, "examples,fuzzing,stateful"),
    ]
    runs = [
        run_schemathesis(
            server, api_data[persona], persona, tmp_path / persona, examples=examples, phases=phases
        )
        for persona, examples, phases in passes
    ]

    with capsys.disabled():
        for run in runs:
            print("\n" + run.line())
    for run in runs:
        assert (run.server_errors, run.schema_violations, run.failures) == (0, 0, []), run.summary
        assert run.cases > 100
