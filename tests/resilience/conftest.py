from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import connections

from tests.dbproxy import DatabaseProxy, routed_through
from tests.sentry.conftest import ingest, sentry  # noqa: F401 - the local Sentry ingest

# Small limits, so that a stalled request ends in about a second; the assertions on time are
# generous bounds, not measurements (bench/db_stall.py measures).
CALL_DEADLINE = 1.0
STATEMENT_TIMEOUT = 0.8
LOCK_TIMEOUT = 0.5
IDLE_IN_TRANSACTION_TIMEOUT = 1.0


@pytest.fixture
def stalling_db(transactional_db, db_proxy, settings) -> Iterator[DatabaseProxy]:
    """Every connection of this thread (default, audit, health) goes through the proxy."""
    settings.HEALTH_CHECK_DATABASE = "health"
    with routed_through(
        db_proxy,
        ("default", "audit", "health"),
        call_deadline=CALL_DEADLINE,
        statement_timeout=STATEMENT_TIMEOUT,
        lock_timeout=LOCK_TIMEOUT,
        idle_in_transaction_timeout=IDLE_IN_TRANSACTION_TIMEOUT,
    ):
        yield db_proxy


@pytest.fixture
def direct_db(transactional_db, db_proxy) -> Iterator[psycopg.Connection]:
    """A connection straight to the test database, past the proxy: a healthy instance."""
    db = connections["default"].settings_dict
    host, port = db_proxy.upstream
    conn = psycopg.connect(
        host=host,
        port=port,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    )
    yield conn
    conn.close()
