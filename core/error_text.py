"""What an exception may say in a log line, a Sentry event and an audit row.

PostgreSQL's errors carry, after their one-line message, DETAIL, CONTEXT and HINT lines, and those
quote data: a CHECK violation's DETAIL is "Failing row contains (…)", the refused row with a
student's name, e-mail and WhatsApp number; a unique violation's names the duplicate key. psycopg
puts them into the exception's text (and its `diag`), Django's wrapper copies that text, and any
exception raised while handling one chains it. So everything that writes an exception out goes
through here: the message without those lines, and for a database error its SQLSTATE and
constraint name, which say what went wrong without saying whose data it was.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import traceback
from collections.abc import Iterator
from itertools import pairwise

from django.db import utils as db_utils

from core.database import sqlstate

# psycopg writes each diagnostic field on a line of its own ("DETAIL:  Failing row contains …").
# A field's text can itself span lines (a refused row with a multi-line note), so everything from
# the first such line on is dropped, not just the line.
_DIAGNOSTICS = re.compile(r"(?:^|\n)[ \t]*(?:DETAIL|CONTEXT|HINT):.*", re.DOTALL)

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def without_diagnostics(text: str) -> str:
    """`text` cut before the first DETAIL, CONTEXT or HINT line of a database error."""
    return _DIAGNOSTICS.sub("", text, count=1)


def database_error_facts(exc: BaseException) -> dict[str, str]:
    """SQLSTATE and constraint name of a database error (or of the one it wraps); else {}."""
    facts: dict[str, str] = {}
    for candidate in exception_chain(exc):
        if not _is_database_error(candidate):
            continue
        state = sqlstate(candidate)
        if state:
            facts.setdefault("sqlstate", state)
        constraint = _constraint_name(candidate)
        if constraint:
            facts.setdefault("constraint", constraint)
    return facts


def safe_message(exc: BaseException) -> str:
    """The exception's message without diagnostics.

    A database error's adds its SQLSTATE and constraint name: "… violates check constraint
    "x" (SQLSTATE 23514, constraint x)".
    """
    message = without_diagnostics(str(exc)).strip()
    if not _is_database_error(exc):
        return message
    facts = database_error_facts(exc)
    named = ", ".join(
        f"{label} {facts[key]}"
        for key, label in (("sqlstate", "SQLSTATE"), ("constraint", "constraint"))
        if key in facts
    )
    return f"{message} ({named})" if named else message


def safe_error_text(exc: BaseException) -> str:
    """`Type: message` as an audit row's error text, from `safe_message`."""
    return f"{type(exc).__name__}: {safe_message(exc)}"


def safe_traceback(exc: BaseException) -> str:
    """The traceback Python prints for `exc` and its chain, each message from `safe_message`."""
    chain = list(exception_chain(exc))
    blocks = [_one_block(chain[0])]
    for outer, inner in pairwise(chain):
        blocks += [_CAUSE if outer.__cause__ is inner else _CONTEXT, _one_block(inner)]
    return "".join(reversed(blocks))


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or while handling, as tracebacks and Sentry walk it."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ if current.__suppress_context__ else current.__context__


class SafeFormatter(logging.Formatter):
    """The log format of LOGGING's handlers: messages and tracebacks without database diagnostics.

    A log line's message may interpolate an exception (`logger.warning("…: %s", exc)`), and a
    record with exc_info prints the whole chain, so both are cleaned where the line is written,
    whatever logger produced it. Celery's formatters mix it in too (planbeta/celery.py).
    """

    def format(self, record: logging.LogRecord) -> str:
        # Another handler's formatter may have cached its own traceback text on the record.
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = without_diagnostics(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        _, value, _ = ei
        if value is None:
            return super().formatException(ei)
        return safe_traceback(value).rstrip("\n")


def _one_block(exc: BaseException) -> str:
    tb = exc.__traceback__
    frames = "".join(traceback.format_tb(tb)) if tb is not None else ""
    header = "Traceback (most recent call last):\n" if frames else ""
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    message = safe_message(exc)
    return f"{header}{frames}{name}: {message}\n" if message else f"{header}{frames}{name}\n"


def _is_database_error(exc: BaseException) -> bool:
    if isinstance(exc, db_utils.Error | sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:  # the quick start on SQLite needs no driver
        return False
    return isinstance(exc, psycopg.Error)


def _constraint_name(exc: BaseException) -> str | None:
    for candidate in (exc, exc.__cause__):
        diag = getattr(candidate, "diag", None)
        name = getattr(diag, "constraint_name", None)
        if name:
            return str(name)
    return None
