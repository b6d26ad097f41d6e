"""Django's PostgreSQL backend with a client-side deadline on every wait for the server.

ENGINE "core.postgresql". Settings keys read besides Django's own (seconds, 0 = off):
* CALL_DEADLINE: longest wait for one statement, fetch, commit, rollback or connection set-up
  (DB_CALL_DEADLINE).
* PING_DEADLINE: longest wait for the CONN_HEALTH_CHECKS ping of a kept-alive connection. A ping
  that hits it only makes Django open a new connection, which also heals a half-dead old one.
* PREPARE_HOT_STATEMENTS: whether the statements sent through `bound_cursor` are prepared on
  the server (default True). Off behind a pooler that hands a session's statements to other
  server connections without carrying prepared statements along (PgBouncer in transaction mode
  before 1.21, or without max_prepared_statements).

See core.db_deadline for the mechanism and why it is needed.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from django.db.backends.postgresql import base, operations
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorWrapper
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property
from psycopg import adapters
from psycopg import errors as pg_errors
from psycopg.pq import Format

from core import db_deadline
from core.database import DatabaseStalled

DEFAULT_PING_DEADLINE = 1.0
TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid
# psycopg prepares a statement once it has run this many times on a connection; Django leaves
# the threshold unset, which disables preparing altogether. Our explicit prepare=True is the only
# way in: Django's own cursors bind on the client, and those never prepare.
_PREPARE_ONLY_WHEN_ASKED = 2**31


class _DeadlineErrorWrapper(DatabaseErrorWrapper):
    """Django routes every driver call through this context manager: the one place to time them."""

    wrapper: DatabaseWrapper

    def __enter__(self) -> None:
        db = self.wrapper
        db._guard.enter(float(db.settings_dict.get("CALL_DEADLINE") or 0))

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        db = self.wrapper
        cut_after = db._guard.leave()
        if (
            cut_after is not None
            and exc_type is not None
            and issubclass(exc_type, db.Database.Error)
        ):
            db.errors_occurred = True
            db_deadline.mark_stalled(f"no answer within {cut_after:g} s")
            raise DatabaseStalled(
                f"The database did not answer within {cut_after:g} s."
            ) from exc_value
        return super().__exit__(exc_type, exc_value, traceback)


class PreparedCursor(psycopg.RawCursor):
    """Binds its parameters on the server and prepares each statement on its connection.

    For the few hot statements written out once per process (core.rows.cursor). Client-side
    binding (Django's default) turns every parameter into SQL text in our process, over a
    quarter of a conversion's CPU when it was measured (bench/pay_and_convert_parts.py), and
    the server parses and plans each statement again. Prepared, a statement is parsed and
    planned once per connection and then only bound. psycopg keeps the prepared names per
    connection, so a new connection (CONN_MAX_AGE, a failed health check) starts with none.

    A raw cursor (PostgreSQL's own `$1` placeholders): the `%s` of Django's SQL are numbered
    once per statement text here, where psycopg's own cursor would parse again, on every call,
    any statement of more than 50 parameters (the four audit rows of a conversion have 84).
    """

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if params is not None:
            query = _numbered(query)
        kwargs.setdefault("prepare", True)
        return super().execute(query, params, **kwargs)


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    # The statements are few and fixed (the audit INSERT once per number of rows), so each
    # text is numbered once per process.
    pieces = sql.split("%s")
    if any("%" in piece for piece in pieces):
        raise ValueError("a prepared statement takes %s placeholders only")
    return pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str:
        # The query log (DEBUG, the tests' query capture) shows a server-bound statement with its
        # values spelled in, as it shows every client-bound one; a value that cannot be spelled
        # in SQL leaves the statement as sent, with its $1 placeholders.
        if isinstance(cursor, PreparedCursor):
            with contextlib.suppress(pg_errors.DataError):
                return str(self.compose_sql(sql, params))
        return str(super().last_executed_query(cursor, sql, params))

    def execute_sql_flush(self, sql_list: Iterable[str]) -> None:
        # TRUNCATE of every table (manage.py flush, the test runner after a transactional test)
        # queues for an exclusive lock on each: maintenance, not one of the app's queries.
        with db_deadline.lifted():
            super().execute_sql_flush(
                ["SET LOCAL statement_timeout = 0", "SET LOCAL lock_timeout = 0", *sql_list]
            )


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = db_deadline.Guard()
        self.execute_wrappers.append(_fail_fast)

    @cached_property
    def wrap_database_errors(self) -> DatabaseErrorWrapper:
        return _DeadlineErrorWrapper(self)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        self._guard.attach(connection.fileno())
        if connection.prepare_threshold is None and self.settings_dict.get(
            "PREPARE_HOT_STATEMENTS", True
        ):
            connection.prepare_threshold = _PREPARE_ONLY_WHEN_ASKED
        return connection

    def bound_cursor(self) -> CursorWrapper:
        """A cursor as `cursor()` gives (the same connection and transaction, the call deadline,
        error translation, the query log) over a PreparedCursor."""
        # What BaseDatabaseWrapper._cursor and create_cursor do, with another cursor class.
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = PreparedCursor(self.connection)
            loader = self.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
            if self.timezone != loader.timezone:
                register_tzloader(self.timezone, cursor)
            return cast(CursorWrapper, self._prepare_cursor(cursor))  # type: ignore[attr-defined]

    def ensure_connection(self) -> None:
        if self.connection is None:
            _raise_if_stalled()
            try:
                super().ensure_connection()
            except Exception as exc:
                if isinstance(exc.__cause__, pg_errors.ConnectionTimeout):
                    # The server accepted TCP (or nothing answered) but never spoke: as stalled
                    # as a statement that hangs, and each further attempt would wait as long.
                    db_deadline.mark_stalled("connection attempt timed out")
                raise

    # _commit and _close are private to Django, so django-stubs does not declare them.
    def _commit(self) -> None:
        if self.connection is not None:
            _raise_if_stalled()
        return super()._commit()  # type: ignore[misc]

    def _close(self) -> None:
        # Not failing fast here: Django closes a broken connection from inside its own error
        # handling. The duplicate socket goes with the connection.
        try:
            return super()._close()  # type: ignore[misc]
        finally:
            self._guard.detach()

    @contextmanager
    def _nodb_cursor(self) -> Iterator[Any]:
        # Used to create and drop databases (the test runner), which wait for a checkpoint: on a
        # busy server that takes longer than any limit meant for the app's queries.
        with db_deadline.lifted(), super()._nodb_cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
            yield cursor

    def is_usable(self) -> bool:
        if self.connection is None or db_deadline.stalled():
            return False
        self._guard.enter(float(self.settings_dict.get("PING_DEADLINE") or DEFAULT_PING_DEADLINE))
        try:
            return super().is_usable()
        finally:
            self._guard.leave()


def _raise_if_stalled() -> None:
    reason = db_deadline.stalled()
    if reason:
        raise DatabaseStalled(f"Not waiting for the database again in this request ({reason}).")


def _fail_fast(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    _raise_if_stalled()
    return execute(sql, params, many, context)
