"""How the application talks to PostgreSQL when it is slow, stalled or gone.

Two things live here, both free of any app of this project:

* `postgres_options(...)`: the libpq and server settings every connection is opened with — the
  connect timeout, TCP keepalives and `tcp_user_timeout` (the kernel gives up on a peer that stops
  acknowledging), and, sent in the startup packet so they cost no round trip, the server's
  `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`.
* `database_unavailable(exc)`: whether an exception means "the database is down, stalled or
  timing out" (answer 503, keep the audit row for later) rather than "our SQL or data is wrong"
  (a 500, a bug). Decided by SQLSTATE, never by message text.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from django.db import utils as db_utils

# SQLSTATE classes that mean the server cannot serve us now: 08 connection exception, 53
# insufficient resources (too many connections, disk full), 57 operator intervention (57014
# statement timeout or cancel, 57P01 admin shutdown, 57P03 cannot connect now), 58 system error.
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58"})
# 55P03: lock_timeout — another transaction has held the row for longer than a healthy one ever
# does, so it is stuck (typically on a stalled connection of another worker), not a business
# conflict. 25P03: the server ended our session after idle_in_transaction_session_timeout.
_UNAVAILABLE_STATES = frozenset({"55P03", "25P03"})


class DatabaseStalled(db_utils.OperationalError):
    """The database did not answer within the client-side deadline (see core.db_deadline)."""


def postgres_options(
    *,
    connect_timeout: int,
    statement_timeout: float,
    lock_timeout: float,
    idle_in_transaction_timeout: float,
    keepalives_idle: int,
    keepalives_interval: int,
    keepalives_count: int,
    tcp_user_timeout: float,
    extra_options: str = "",
) -> dict[str, Any]:
    """OPTIONS for a PostgreSQL alias; times in seconds, 0 switches a server timeout off.

    `extra_options` is whatever `options` the DATABASE_URL already carried (kept, ours appended).
    """
    server = {
        "statement_timeout": statement_timeout,
        "lock_timeout": lock_timeout,
        "idle_in_transaction_session_timeout": idle_in_transaction_timeout,
    }
    flags = " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in server.items())
    return {
        # libpq (and psycopg) treat anything below 2 s as 2 s.
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": keepalives_idle,
        "keepalives_interval": keepalives_interval,
        "keepalives_count": keepalives_count,
        "tcp_user_timeout": round(tcp_user_timeout * 1000),
        "options": f"{extra_options} {flags}".strip(),
    }


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (Django wraps the driver's error as __cause__)."""
    for candidate in (exc, exc.__cause__):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return state
    return None


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached or did not answer in time."""
    if isinstance(exc, (DatabaseStalled, db_utils.InterfaceError)):
        return True
    if not isinstance(exc, db_utils.DatabaseError):
        return False
    state = sqlstate(exc)
    if state is not None:
        return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES
    cause = exc.__cause__
    if isinstance(cause, sqlite3.OperationalError):
        # The quick start's SQLite: only a busy database file is "unavailable"; its other
        # OperationalErrors (no such table, syntax) are bugs.
        return "database is locked" in str(cause)
    # A driver error without SQLSTATE is raised by the client side: the connection failed, was
    # closed by the server or the network, or timed out while connecting.
    return isinstance(exc, db_utils.OperationalError)


def unavailable_reason(exc: BaseException) -> str:
    """A short, data-free phrase for logs, audit descriptions and Sentry."""
    state = sqlstate(exc)
    if isinstance(exc, DatabaseStalled):
        return "no answer in time"
    if state == "57014":
        return "statement timeout"
    if state == "55P03":
        return "lock timeout"
    if state == "25P03":
        return "idle-in-transaction timeout"
    if state is not None:
        return f"SQLSTATE {state}"
    return "connection failed"
