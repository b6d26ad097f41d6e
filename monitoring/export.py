"""The audit-log export: every matching entry, streamed as CSV or JSON Lines.

Rows come from a server-side cursor (PostgreSQL) in chunks of EXPORT_CHUNK_ROWS, and each is
written out as soon as it is read, so memory stays the same whatever the number of entries.
Each entry has the keys the audit-log API gives it (camelCase, the same values).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import sentry_sdk
from django.db.models import QuerySet
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from audit.models import AuditLog

logger = logging.getLogger(__name__)

EXPORT_CHUNK_ROWS = 2000
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV Injection"):
# such a cell gets a leading apostrophe, which makes it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def stream(
    rows: QuerySet[AuditLog],
    *,
    fmt: str,
    entry: Callable[[AuditLog], dict[str, Any]],
    columns: list[str],
    prepare: Callable[[list[AuditLog]], object] = lambda chunk: None,
) -> Iterator[str | bytes]:
    """The export, a line at a time. `entry` gives a row as the audit-log API answers it, with
    `columns` as its keys (the CSV header, there even when nothing matches); `prepare` sees each
    chunk of rows before they are written (the entity names are looked up a chunk at a time)."""
    entries = (entry(row) for row in _rows(rows, prepare))
    if fmt == "csv":
        return _csv(entries, columns)
    return _jsonl(entries)


def _rows(
    rows: QuerySet[AuditLog], prepare: Callable[[list[AuditLog]], object]
) -> Iterator[AuditLog]:
    try:
        # Oldest first: the order the trail was written in.
        chunk: list[AuditLog] = []
        for row in rows.order_by("id").iterator(chunk_size=EXPORT_CHUNK_ROWS):
            chunk.append(row)
            if len(chunk) == EXPORT_CHUNK_ROWS:
                prepare(chunk)
                yield from chunk
                chunk = []
        prepare(chunk)
        yield from chunk
    except Exception as exc:
        # The status line (200) has gone out; the file just ends early. The log and Sentry say so.
        logger.error("audit-log export failed mid-stream: %s", type(exc).__name__)
        sentry_sdk.capture_exception(exc)
        raise


class _Line:
    """csv.writer's file: hands back each line instead of storing it."""

    def write(self, text: str) -> str:
        return text


def _csv(entries: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(columns)
    for entry in entries:
        cells = []
        for name in columns:
            value = entry[name]
            if isinstance(value, dict | list):
                value = json.dumps(value, cls=JSONEncoder, ensure_ascii=False, sort_keys=True)
            cells.append(safe_cell("" if value is None else value))
        yield writer.writerow(cells)


def _jsonl(entries: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    # The API's own JSON renderer, so that each line is byte for byte what the feed would send.
    renderer = JSONRenderer()
    for entry in entries:
        yield renderer.render(entry) + b"\n"
