"""Django's PostgreSQL backend with a client-side deadline on every wait for the server.

ENGINE "core.postgresql". Settings keys read besides Django's own (seconds, 0 = off):
* CALL_DEADLINE: longest wait for one statement, fetch, commit, rollback or connection set-up
  (DB_CALL_DEADLINE).
* PING_DEADLINE: longest wait for the CONN_HEALTH_CHECKS ping of a kept-alive connection. A ping
  that hits it only makes Django open a new connection, which also heals a half-dead old one.

See core.db_deadline for the mechanism and why it is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.postgresql import base, operations
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property
from psycopg import errors as pg_errors

from core import db_deadline
from core.database import DatabaseStalled

DEFAULT_PING_DEADLINE = 1.0


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


class DatabaseOperations(operations.DatabaseOperations):
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
        return connection

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
