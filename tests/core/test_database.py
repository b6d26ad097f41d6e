"""Which database errors mean "unavailable" (503, keep the row) and the limits every connection
is opened with — checked against the real server, not against our own constants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction

from audit.models import AuditLog
from core.database import database_unavailable, unavailable_reason
from tests.factories import make_lead

ROOT = Path(__file__).resolve().parents[2]


def _error_of(sql: str, *, setup: str = "") -> DatabaseError:
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cur:
        if setup:
            cur.execute(setup)
        cur.execute(sql)
    return info.value


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_statement_timeout_means_unavailable():
    exc = _error_of("SELECT pg_sleep(2)", setup="SET LOCAL statement_timeout = '50ms'")
    assert database_unavailable(exc)
    assert unavailable_reason(exc) == "statement timeout"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_means_unavailable():
    lead = make_lead()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cur:
            cur.execute("BEGIN; SELECT 1 FROM leads_lead WHERE id = %s FOR UPDATE", [lead.pk])
            exc = _error_of(
                f"SELECT 1 FROM leads_lead WHERE id = {int(lead.pk)} FOR UPDATE",  # noqa: S608
                setup="SET LOCAL lock_timeout = '50ms'",
            )
    finally:
        other.close()
    assert database_unavailable(exc)
    assert unavailable_reason(exc) == "lock timeout"


@pytest.mark.django_db
def test_wrong_sql_and_refused_data_are_bugs_not_unavailability():
    assert not database_unavailable(_error_of("SELECT no_such_column FROM leads_lead"))
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        AuditLog.objects.create(action="X", description="x", severity=None)
    assert not database_unavailable(info.value)
    assert not database_unavailable(RuntimeError("not a database error"))


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_refused_connection_means_unavailable(refused_connection):
    with pytest.raises(DatabaseError) as info:
        refused_connection.ensure_connection()
    assert database_unavailable(info.value)
    assert unavailable_reason(info.value) == "connection failed"


@pytest.fixture
def refused_connection():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = connections.create_connection("default")
    conn.settings_dict = {**conn.settings_dict, "HOST": "127.0.0.1", "PORT": str(port)}
    yield conn
    conn.close()


@pytest.mark.postgres
@pytest.mark.django_db(databases=["default", "audit", "health"])
def test_every_connection_is_opened_with_the_server_timeouts_and_tcp_settings(settings):
    for alias in ("default", "audit", "health"):
        conn = connections[alias]
        with conn.cursor() as cur:
            shown = {}
            for name in (
                "statement_timeout",
                "lock_timeout",
                "idle_in_transaction_session_timeout",
            ):
                cur.execute(f"SHOW {name}")
                shown[name] = cur.fetchone()[0]
        assert shown == {
            "statement_timeout": "5s",
            "lock_timeout": "3s",
            "idle_in_transaction_session_timeout": "10s",
        }, alias
        params = conn.connection.info.get_parameters()
        assert {k: params[k] for k in ("keepalives", "keepalives_idle", "tcp_user_timeout")} == {
            "keepalives": "1",
            "keepalives_idle": "30",
            "tcp_user_timeout": "10000",
        }
        assert conn.settings_dict["CALL_DEADLINE"] == settings.DB_CALL_DEADLINE == 6.0


def test_a_call_deadline_not_above_the_statement_timeout_is_refused_at_startup():
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://u@127.0.0.1:1/x",
        "DEBUG": "1",
        "DB_STATEMENT_TIMEOUT": "5",
        "DB_CALL_DEADLINE": "5",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DB_CALL_DEADLINE must be longer than DB_STATEMENT_TIMEOUT" in result.stderr
