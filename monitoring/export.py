"""The audit-log export: every matching entry, streamed as CSV or JSON Lines.

Rows are read in chunks of EXPORT_CHUNK_ROWS, each chunk the next ids after the last one read
(keyset), and each row is written out as soon as it is read, so memory and each query's cost stay
the same whatever the number of entries.
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

from audit import timeline
from audit.models import AuditLog
from core.spreadsheet import safe_cell

logger = logging.getLogger(__name__)

EXPORT_CHUNK_ROWS = 2000
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}


def stream(
    rows: QuerySet[AuditLog],
    *,
    fmt: str,
    entry: Callable[[AuditLog], dict[str, Any]],
    columns: list[str],
    prepare: Callable[[list[AuditLog]], object] = lambda chunk: None,
    bounds: dict[str, Any] | None = None,
) -> Iterator[str | bytes]:
    """The export, a line at a time. `entry` gives a row as the audit-log API answers it, with
    `columns` as its keys (the CSV header, there even when nothing matches); `prepare` sees each
    chunk of rows before they are written (the entity names are looked up a chunk at a time).
    `bounds` repeats the filters' `after`, `before` and `since` for audit.timeline, with
    `not_before`, when the rows' entity was made."""
    entries = (entry(row) for row in _rows(rows, prepare, bounds or {}))
    if fmt == "csv":
        return _csv(entries, columns)
    return _jsonl(entries)


def _rows(
    rows: QuerySet[AuditLog], prepare: Callable[[list[AuditLog]], object], bounds: dict[str, Any]
) -> Iterator[AuditLog]:
    # Oldest first: the order the trail was written in. Not a server-side cursor: the stream runs
    # after the view's transaction, and outside one PostgreSQL keeps a cursor (WITH HOLD) by
    # copying its whole result at once (39 s for 10 million rows, past the statement timeout,
    # before the first row); inside one, a slow client would hold a transaction open for the
    # whole download. A chunk is one short query on an index, whatever the size of the trail,
    # and `prepare` looks up the entities' names once per chunk. Each chunk is read from the
    # months that can hold it (audit.timeline), so its cost does not grow with the years kept.
    last_id: int | None = bounds.get("after")
    before, since, not_before = bounds.get("before"), bounds.get("since"), bounds.get("not_before")
    try:
        while True:
            page = rows if last_id is None else rows.filter(id__gt=last_id)
            chunk = timeline.oldest(
                page,
                limit=EXPORT_CHUNK_ROWS,
                above=last_id,
                below=before,
                since=since,
                not_before=not_before,
            )
            prepare(chunk)
            yield from chunk
            if len(chunk) < EXPORT_CHUNK_ROWS:
                return
            last_id = chunk[-1].pk
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
