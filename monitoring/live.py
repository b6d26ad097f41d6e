"""The activity dashboard's live stream: server-sent events rung by PostgreSQL's NOTIFY.

Each transaction that writes audit rows sends one notification at its commit (audit.notify).
One thread per process LISTENs for it on a connection of its own (the doorbell) and wakes every
open stream of that process; each stream then sends one `audit` event, and the page reads the new
rows through the audit-log API with its `after` cursor, as a poll would. So the stream carries no
data of its own (nothing to filter by role or redact twice), a tab costs nothing while nothing
happens, and a row shows up within a moment of its commit.

A stream lasts ACTIVITY_STREAM_SECONDS, with a comment line every ACTIVITY_STREAM_HEARTBEAT_SECONDS
so that proxies keep it open and a closed tab is noticed; the browser's EventSource reconnects by
itself. Whenever push cannot work the page polls as before: without PostgreSQL, under a server
whose workers serve one request at a time (gunicorn's sync workers: a stream would take a whole
worker), when the process already holds ACTIVITY_STREAMS_PER_PROCESS streams (all answered 204,
which tells EventSource to stop), and when the doorbell loses its connection (a `fallback` event,
then the stream ends).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Generator
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections

from audit.notify import CHANNEL

logger = logging.getLogger(__name__)

READY = b"retry: 3000\nevent: ready\ndata: {}\n\n"
AUDIT = b"event: audit\ndata: {}\n\n"
FALLBACK = b"event: fallback\ndata: {}\n\n"
KEEP_ALIVE = b": keep-alive\n\n"

# A burst of commits becomes at most one event per this many seconds and stream: the page reads
# everything new in one go anyway.
MIN_EVENT_SPACING = 0.2
# How long a new stream waits for the doorbell's first connection before it gives up on push.
CONNECT_WAIT = 5.0
# Between two connection attempts after a failure.
RECONNECT_DELAY = 2.0


def listen_params() -> dict[str, Any]:
    """How to reach the application's database, for the doorbell's own connection."""
    conf = connection.settings_dict
    params: dict[str, Any] = {
        "dbname": conf["NAME"],
        "user": conf.get("USER") or None,
        "password": conf.get("PASSWORD") or None,
        "host": conf.get("HOST") or None,
        "port": conf.get("PORT") or None,
        "application_name": "planbeta-live",
        "connect_timeout": 5,
    }
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if key in conf.get("OPTIONS", {}):
            params[key] = conf["OPTIONS"][key]
    return {k: v for k, v in params.items() if v is not None}


class Doorbell:
    """One LISTEN connection, shared by every stream of the process.

    `rings` counts the notifications seen; `connected` says whether they can be trusted to come.
    Each change of either wakes the waiting streams.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = params
        self._cond = threading.Condition()
        self._rings = 0
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()

    def start(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="planbeta-live", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Ends the thread and closes its connection (tests, before their database is dropped)."""
        self._stop.set()
        conn = self._conn
        if conn is not None:
            # Ends a wait in notifies() at once instead of at its timeout.
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._set(connected=False)

    @property
    def state(self) -> tuple[int, bool]:
        with self._cond:
            return self._rings, self._connected

    def wait(self, seen: int, timeout: float) -> tuple[int, bool]:
        """Until a ring after `seen`, a lost connection or the timeout: (rings, connected)."""
        with self._cond:
            self._cond.wait_for(lambda: self._rings != seen or not self._connected, timeout)
            return self._rings, self._connected

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected, timeout)

    def _set(self, *, connected: bool, ring: bool = False) -> None:
        with self._cond:
            self._connected = connected
            if ring:
                self._rings += 1
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._params, autocommit=True) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Rows may have been written while no one listened: the pages catch up.
                    self._set(connected=True, ring=True)
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._set(connected=True, ring=True)
                            if self._stop.is_set():
                                break
            except Exception as exc:  # any failure: reconnect; the pages poll meanwhile
                if not self._stop.is_set():
                    logger.warning(
                        "live stream: listening stopped (%s), retrying", type(exc).__name__
                    )
            finally:
                self._conn = None
                self._set(connected=False)
            self._stop.wait(RECONNECT_DELAY)


_bell: Doorbell | None = None
_bell_lock = threading.Lock()


def doorbell() -> Doorbell:
    """The process's doorbell, started on first use (and again in a forked child)."""
    global _bell
    with _bell_lock:
        if _bell is None or _bell._pid != os.getpid():
            _bell = Doorbell(listen_params())
        _bell.start()
        return _bell


def stop_doorbell() -> None:
    global _bell
    with _bell_lock:
        if _bell is not None:
            _bell.stop()
            _bell = None


_open = 0
_open_lock = threading.Lock()


def take_slot() -> bool:
    """One of the process's ACTIVITY_STREAMS_PER_PROCESS places, or False when all are taken."""
    global _open
    with _open_lock:
        if _open >= int(settings.ACTIVITY_STREAMS_PER_PROCESS):
            return False
        _open += 1
        return True


def release_slot() -> None:
    global _open
    with _open_lock:
        _open = max(0, _open - 1)


def open_streams() -> int:
    with _open_lock:
        return _open


def push_available(meta: dict[str, Any]) -> bool:
    """Whether this server can hold a stream open without starving other requests."""
    return (
        bool(settings.ACTIVITY_PUSH)
        and connection.vendor == "postgresql"
        # False under gunicorn's sync workers and in Django's test client.
        and bool(meta.get("wsgi.multithread"))
    )


class Stream:
    """The event stream of one tab. It holds a slot (taken by the caller) until it is closed,
    which Django does when the response ends, even if it never started (a generator's `finally`
    would not run then)."""

    def __init__(self, bell: Doorbell) -> None:
        self._events = self._generate(bell)
        self._closed = False

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> bytes:
        return next(self._events)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.close()
            release_slot()

    @staticmethod
    def _generate(bell: Doorbell) -> Generator[bytes]:
        # The request's own database connection is not needed while the stream is open.
        connections.close_all()
        if not bell.wait_connected(CONNECT_WAIT):
            yield FALLBACK
            return
        yield READY
        seen, _ = bell.state
        heartbeat = float(settings.ACTIVITY_STREAM_HEARTBEAT_SECONDS)
        ends = time.monotonic() + float(settings.ACTIVITY_STREAM_SECONDS)
        while (left := ends - time.monotonic()) > 0:
            rings, connected = bell.wait(seen, min(heartbeat, left))
            if not connected:
                yield FALLBACK
                return
            if rings != seen:
                seen = rings
                yield AUDIT
                time.sleep(MIN_EVENT_SPACING)
            else:
                yield KEEP_ALIVE
