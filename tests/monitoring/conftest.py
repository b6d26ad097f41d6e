from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime

import pytest
from django.db import connections
from django.db.utils import load_backend
from django.utils import timezone

from audit.models import AuditLog


@pytest.fixture(autouse=True)
def _an_alert_channel_is_configured(settings):
    # As in production: without one, the `alerting` check makes the whole report degraded (the
    # tests of that case clear it again).
    settings.FOUNDER_ALERT_EMAILS = ["founders@example.com"]
    settings.ALERT_WEBHOOK_URLS = []


@pytest.fixture
def audit_rows(db):
    """Insert audit rows directly: `audit_rows(INFO=95, ERROR=5, at=...)`, returns them."""

    def make(*, at: datetime | None = None, action: str = "LEAD_UPDATED", **per_severity: int):
        created = at or timezone.now()
        rows = [
            AuditLog(action=action, severity=severity, description="x", created_at=created)
            for severity, n in per_severity.items()
            for _ in range(n)
        ]
        return AuditLog.objects.bulk_create(rows)

    return make


def _add_alias(name: str, **overrides) -> None:
    # Registered as a live connection only, not in settings: Django's test case allows such
    # dynamically created connections, and the real aliases stay untouched.
    config = {**connections.settings["default"], **overrides}
    connections[name] = load_backend(config["ENGINE"]).DatabaseWrapper(config, name)


def _drop_alias(name: str) -> None:
    connections[name].close()
    del connections[name]


@pytest.fixture
def refused_database(settings) -> Iterator[str]:
    """A database alias on a local port where nothing listens: connection refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _add_alias("health_refused", HOST="127.0.0.1", PORT=str(port))
    settings.HEALTH_CHECK_DATABASE = "health_refused"
    yield "health_refused"
    _drop_alias("health_refused")


@pytest.fixture
def hung_database(settings) -> Iterator[str]:
    """A database alias whose server accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # the kernel completes handshakes into the backlog; nobody ever answers
    _add_alias("health_hung", HOST="127.0.0.1", PORT=str(server.getsockname()[1]))
    settings.HEALTH_CHECK_DATABASE = "health_hung"
    yield "health_hung"
    _drop_alias("health_hung")
    server.close()
