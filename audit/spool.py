"""The audit rows that could not be written because the database was away, kept until it is back.

`audit_record_independent` hands a row here when its write failed because the database is down or
stalled (core.database.database_unavailable). The row is appended, as one JSON line, to this
process's spool file in AUDIT_SPOOL_DIR and fsync'd before the call returns: a local file needs
neither the database nor Redis, which are often down together. The log line and the Sentry
message say only the action, severity, reason and spool id; the row itself (which may name a
student) exists only in the file, readable by the app's user alone.

Replay writes the rows to the trail exactly once, whoever runs it and however often:
* every row carries a `spool_id` (a UUID) into the table, where a unique index on it is the
  arbiter: the INSERT is `ON CONFLICT DO NOTHING`, so a row already written is not written again,
  even by two replayers at once or after a replayer that died between its INSERT and deleting the
  file;
* a replayer claims a file by taking its lock and renaming it (`*.replaying`), so writers carry on
  in a new file and two replayers do not work on the same rows; a claimed file whose replayer died
  has lost its lock and is taken over by the next replay.

Who replays: beat every AUDIT_SPOOL_REPLAY_SECONDS (audit.tasks, all files of the host's spool
directory), and any process right after its next successful independent write (cheap on the hot
path: one flag until this process has spooled something or not looked yet). `manage.py
audit_spool` shows what is waiting and replays by hand.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import sentry_sdk
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.utils import timezone

from audit.models import AuditLog
from core.database import database_unavailable

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
CLAIMED_SUFFIX = ".replaying"
REJECTED_SUFFIX = ".rejected"
BATCH_SIZE = 500

# False once this process knows the spool directory holds nothing to replay; set again when it
# spools a row. Starts True so that the first successful write of a process looks once, for rows
# left by a process that died.
_maybe_pending = True


def spool_directory() -> Path:
    return Path(settings.AUDIT_SPOOL_DIR)


def keep(row: AuditLog, *, reason: str) -> str | None:
    """Append `row` to this process's spool file, on disk before returning; its spool id.

    Never raises: None if even the spool cannot be written (then only the log and Sentry know).
    """
    global _maybe_pending
    spool_id = row.spool_id or uuid.uuid4()
    record = {
        "spoolId": str(spool_id),
        "spooledAt": timezone.now().isoformat(),
        "reason": reason,
        "fields": {**_encode(row), "spool_id": str(spool_id)},
    }
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
    try:
        directory = spool_directory()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _append(directory / _own_file_name(), line.encode())
    except OSError as exc:
        logger.critical(
            "audit spool write failed, row lost: action=%s severity=%s error=%s",
            row.action,
            row.severity,
            type(exc).__name__,
        )
        sentry_sdk.capture_message(
            f"audit spool write failed, row lost: action={row.action} error={type(exc).__name__}",
            level="fatal",
        )
        return None
    _maybe_pending = True
    logger.warning(
        "audit row spooled until the database answers: action=%s severity=%s reason=%s spool_id=%s",
        row.action,
        row.severity,
        reason,
        spool_id,
    )
    return str(spool_id)


def pending() -> list[tuple[Path, int]]:
    """The spool files waiting for replay and how many rows each holds."""
    directory = spool_directory()
    if not directory.is_dir():
        return []
    return [
        (path, sum(1 for line in path.read_bytes().splitlines() if line.strip()))
        for path in sorted(directory.iterdir())
        if path.name.endswith((SPOOL_SUFFIX, CLAIMED_SUFFIX))
    ]


def replay(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Write every spooled row to the trail (once); the number of rows handled.

    Raises the database error if the database is still unavailable; the rows stay spooled.
    """
    global _maybe_pending
    directory = spool_directory()
    if not directory.is_dir():
        _maybe_pending = False
        return 0
    handled, busy = 0, False
    for path in sorted(directory.iterdir()):
        if not path.name.endswith((SPOOL_SUFFIX, CLAIMED_SUFFIX)):
            continue
        count = _replay_file(path, using=using)
        if count is None:
            busy = True  # being appended to or replayed by another process right now
        else:
            handled += count
    if not busy:
        _maybe_pending = False
    return handled


def replay_if_pending(*, using: str) -> None:
    """After a successful write: replay what this process may have spooled. Never raises."""
    if not _maybe_pending:
        return
    try:
        replay(using=using)
    except Exception as exc:
        logger.warning("audit spool replay failed: error=%s", type(exc).__name__)


# --- files -----------------------------------------------------------------------------------


def _own_file_name() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}{SPOOL_SUFFIX}"


def _is_still(fd: int, path: Path) -> bool:
    """Is the open file still the one at `path` (not renamed away by a replayer meanwhile)?"""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _append(path: Path, data: bytes) -> None:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _is_still(fd, path):
                continue  # a replayer claimed this file while we waited: append to a new one
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a writer died mid-line: keep our record on its own line
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        _fsync_directory(path.parent)
        return


def _fsync_directory(directory: Path) -> None:
    # A new file's name is durable only once its directory is.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replay_file(path: Path, *, using: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0  # replayed by someone else since the directory was listed
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        if not _is_still(fd, path):
            return 0
        if path.name.endswith(SPOOL_SUFFIX):
            claimed = path.with_name(
                f"{path.name.removesuffix(SPOOL_SUFFIX)}.{uuid.uuid4().hex[:12]}{CLAIMED_SUFFIX}"
            )
            os.rename(path, claimed)
            path = claimed
        records, unreadable = _read(fd)
        if unreadable:
            _reject(path, unreadable, why="unreadable line")
        try:
            rows = [_decode(record["fields"]) for record in records]
            with transaction.atomic(using=using):
                AuditLog.objects.using(using).bulk_create(
                    rows, ignore_conflicts=True, batch_size=BATCH_SIZE
                )
        except DatabaseError as exc:
            if database_unavailable(exc):
                raise  # still away: the claimed file waits for the next replay
            _reject(path, [line for line in _lines(path)], why=type(exc).__name__)
            os.unlink(path)
            return 0
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            _reject(path, [line for line in _lines(path)], why=type(exc).__name__)
            os.unlink(path)
            return 0
        os.unlink(path)
        logger.info("audit spool replayed: rows=%s file=%s", len(rows), path.name)
        return len(rows)
    finally:
        os.close(fd)


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def _read(fd: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    records, unreadable = [], []
    for line in b"".join(chunks).splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
                raise ValueError("not a spool record")
        except ValueError:
            unreadable.append(line)
            continue
        records.append(record)
    return records, unreadable


def _reject(path: Path, lines: list[bytes], *, why: str) -> None:
    """Set rows the database refuses (or a torn line) aside for a person, and say so once."""
    target = path.with_name(f"{path.name}{REJECTED_SUFFIX}")
    _append(target, b"".join(line + b"\n" for line in lines))
    logger.error("audit spool rows set aside: rows=%s file=%s why=%s", len(lines), target.name, why)
    sentry_sdk.capture_message(
        f"audit spool rows set aside: rows={len(lines)} why={why}", level="error"
    )


# --- rows <-> JSON ---------------------------------------------------------------------------


def _fields() -> list[Any]:
    return [f for f in AuditLog._meta.concrete_fields if not f.primary_key]


def _encode(row: AuditLog) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in _fields():
        value = field.value_from_object(row)
        if isinstance(value, datetime):
            value = value.isoformat()  # microseconds and offset kept
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[field.attname] = value
    return out


def _decode(fields: dict[str, Any]) -> AuditLog:
    # Unknown keys (a newer version wrote the file) are ignored, missing ones take the default.
    return AuditLog(
        **{f.attname: f.to_python(fields[f.attname]) for f in _fields() if f.attname in fields}
    )
