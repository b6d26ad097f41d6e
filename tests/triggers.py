"""Failures injected by the database itself: a trigger, installed by the table owner (the
application role may not), that refuses some INSERTs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def inserts_refused(owner_connection: Any, *, table: str, name: str, when: str) -> Iterator[None]:
    """While inside, an INSERT into `table` of a row matching the SQL condition `when` (on NEW)
    fails with a database error."""
    with owner_connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger AS $$
            BEGIN
              IF {when} THEN RAISE EXCEPTION 'injected: {name}'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER {name} BEFORE INSERT ON {table}
            FOR EACH ROW EXECUTE FUNCTION {name}();
            """
        )
    try:
        yield
    finally:
        with owner_connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION {name}();")
