"""/metrics under real gunicorn with two sync workers, as deploy/gunicorn.conf.py runs them: one
scrape holds the latency observations of both workers, and the database figures whichever
worker answers."""

from __future__ import annotations

import os
import re
import socket
from contextlib import contextmanager

import pytest
from django.db import connections
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditLog
from tests.gunicorn import http_request, serving

TOKEN = "gunicorn-metrics-token-0123456789"
# Requests nothing else sends (the readiness wait polls livez, and a poll that timed out while
# the workers booted may still be served later): scrapes without the token.
REFUSED = (("method", "GET"), ("route", "metrics"), ("status", "401"))


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    status, _, body = http_request(port, "GET", path, headers=headers)
    return status, body


def _scrape(port: int) -> dict[str, dict[tuple, float]]:
    status, body = _get(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@contextmanager
def _serving(tmp_path, **extra_env: str):
    db = connections["default"].settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    metrics_dir = tmp_path / "prometheus"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CI", "REDIS_URL", "DEBUG")},
        "DATABASE_URL": f"postgres://{db['USER']}@{host}/{db['NAME']}",
        "SECRET_KEY": "gunicorn-metrics-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    with serving(env, tmp_path / "gunicorn.log") as port:
        yield port, metrics_dir


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    with _serving(tmp_path) as served:
        yield served


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_scrape_holds_both_workers_request_latencies(gunicorn):
    port, metrics_dir = gunicorn

    # A sync worker serves one connection at a time: a request whose headers have not all
    # arrived holds the worker that accepted it, so the next five go to the other one.
    held = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        held.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(5):
            assert _get(port, "/metrics")[0] == 401
        held.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := held.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 401")
    finally:
        held.close()

    counts = _scrape(port)["planbeta_http_request_duration_seconds_count"]

    assert counts[REFUSED] == 6
    assert len(_pids(metrics_dir)) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_both_workers_answer_the_audit_counts_the_database_holds(gunicorn):
    port, _ = gunicorn
    AuditLog.objects.create(action="LEAD_CREATED", description="one")
    AuditLog.objects.create(action="LEAD_CREATED", description="two")
    expected = {(("action", "LEAD_CREATED"), ("severity", "INFO")): 2.0}

    # As above: the held scrape is answered by one worker, the one in between by the other.
    held = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        head = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        held.sendall(head.encode())
        in_between = _scrape(port)["planbeta_audit_events_total"]
        held.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := held.recv(65536):
            answer += chunk
    finally:
        held.close()
    status_and_headers, _, body = answer.partition(b"\r\n\r\n")
    assert status_and_headers.startswith(b"HTTP/1.1 200"), status_and_headers
    held_counts = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "planbeta_audit_events_total"
    }

    assert in_between == held_counts == expected


def _pids(metrics_dir) -> set[str]:
    return {re.search(r"_(\d+)\.db$", p.name).group(1) for p in metrics_dir.glob("histogram_*.db")}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_latencies_of_workers_that_exited_stay_in_the_sums(tmp_path):
    # Each worker is replaced after two requests (max_requests), the readiness poll included.
    with _serving(tmp_path, GUNICORN_MAX_REQUESTS="2", GUNICORN_MAX_REQUESTS_JITTER="0") as (
        port,
        metrics_dir,
    ):
        for _ in range(8):
            assert _get(port, "/metrics")[0] == 401
        counts = _scrape(port)["planbeta_http_request_duration_seconds_count"]
        pids = _pids(metrics_dir)

    assert counts[REFUSED] == 8
    assert len(pids) >= 4  # at least four processes served them, most of them gone by now
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
