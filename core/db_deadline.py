"""A client-side deadline on every round trip to the database, for sync workers.

Why: `statement_timeout` is enforced by the server, so it only helps while the server and the
network still talk to us. When a proxy, a NAT or the server itself stops passing bytes, the worker
sits in `poll()` on the socket until gunicorn kills it; meanwhile it serves nobody and its open
transaction keeps its row locks. TCP keepalives and `tcp_user_timeout` do not fire either: a proxy
in between acknowledges every packet.

How: our database backend (core.postgresql) registers each call that waits on the server — every
statement, fetch, commit, rollback, connection set-up and health ping — with one watchdog thread
per process, together with a duplicate of the connection's socket. If the call is still running
when its deadline passes, the watchdog calls `shutdown()` on that socket. The blocked `poll()`
returns at once, libpq sees the connection closed, and the request thread gets an ordinary
database error at the call that hung, which the backend raises as `DatabaseStalled`. From there
the normal error paths run: the transaction is abandoned, the error handler answers 503, the
failure row is written or spooled.

Why this mechanism rather than another:
* `shutdown()` works on the socket, not the file descriptor, so it is safe from another thread;
  the duplicate descriptor is ours, so the watchdog can never hit a descriptor number that libpq
  closed and the process reused meanwhile.
* A signal (SIGALRM) would raise at an arbitrary Python line, possibly inside an audit write or a
  `finally`; the socket shutdown surfaces only where the database is being waited on.
* A cancel request (`pg_cancel_backend`) travels over a new connection through the same stalled
  path and is answered on the stalled socket, so it cannot end the wait.

The deadline is per call (DB_CALL_DEADLINE, above statement_timeout so that a merely slow query is
cancelled by the server first, which keeps the connection), not per request: a request may spend
ten seconds on an SMTP server and then still write its result.

Once a call of a request has hit its deadline (or a connection attempt timed out), the database
is known to be stalled: the rest of that request (or task) does not wait for it again. New
statements, commits and connection attempts fail at once with `DatabaseStalled`, so the request
answers 503 a moment after the first deadline instead of once per connection it touches; the
failure row goes to the spool (audit.spool). `request_scope()` delimits that memory; the
middleware opens one per request and the Celery signals one per task.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse

# How often the watchdog looks at the registered calls: a tenth of the shortest deadline in use,
# so a call is cut within 110 % of its deadline. Registering a call never wakes it (that would
# cost a thread switch per query); it ticks while calls are being made and sleeps when idle.
# Ticking rarely matters on a busy machine: each wake-up asks the running thread for the GIL.
TICK_FRACTION = 0.1
MIN_TICK_SECONDS = 0.05
MAX_TICK_SECONDS = 1.0
IDLE_AFTER_SECONDS = 60.0


@dataclass(eq=False, slots=True)
class _Call:
    sock: socket.socket
    deadline: float
    seconds: float
    killed: bool = False


@dataclass
class _Scope:
    stalled: str = ""  # why the database is considered stalled in this scope, or ""


_scope: ContextVar[_Scope | None] = ContextVar("db_deadline_scope", default=None)
_limit: ContextVar[float | None] = ContextVar("db_deadline_limit", default=None)
_lifted: ContextVar[bool] = ContextVar("db_deadline_lifted", default=False)


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._calls: dict[int, _Call] = {}
        self._thread: threading.Thread | None = None
        self._last_busy = 0.0
        self._tick = MAX_TICK_SECONDS

    def register(self, key: int, sock: socket.socket, seconds: float) -> _Call:
        now = time.monotonic()
        call = _Call(sock, now + seconds, seconds)
        with self._lock:
            self._calls[key] = call
            tick = seconds * TICK_FRACTION
            if tick < self._tick:
                self._tick = max(tick, MIN_TICK_SECONDS)
            if not self._last_busy:
                self._wake_up()
            self._last_busy = now
        return call

    def _wake_up(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="db-deadline-watchdog", daemon=True
            )
            self._thread.start()
        else:
            self._wake.notify()  # it sleeps without a timeout while the process is idle

    def unregister(self, key: int, call: _Call) -> bool:
        """Forget the call; True if the watchdog shut its socket down."""
        with self._lock:
            if self._calls.get(key) is call:
                del self._calls[key]
            return call.killed

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for key, call in list(self._calls.items()):
                    if call.deadline <= now:
                        call.killed = True
                        del self._calls[key]
                        with contextlib.suppress(OSError):  # already closed by the peer
                            call.sock.shutdown(socket.SHUT_RDWR)
                if self._calls:
                    self._last_busy = now
                if self._last_busy and now - self._last_busy > IDLE_AFTER_SECONDS:
                    self._last_busy = 0.0
                    self._tick = MAX_TICK_SECONDS
                self._wake.wait(self._tick if self._last_busy else None)

    def reset_after_fork(self) -> None:
        # A forked child has none of the parent's threads; it starts its own on first use.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._calls = {}
        self._thread = None
        self._last_busy = 0.0
        self._tick = MAX_TICK_SECONDS


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.reset_after_fork)


@dataclass
class Guard:
    """Per-connection bookkeeping for the backend: nested calls share the outermost deadline.

    Django nests its wrappers (connecting also sets autocommit and runs the session set-up); the
    outermost call owns the deadline. A connection being opened is registered as soon as its socket
    exists, so the set-up queries that follow the TCP connect are covered too.
    """

    depth: int = 0
    call: _Call | None = None
    owner_depth: int = 0
    seconds: float = 0.0
    _sock: socket.socket | None = field(default=None, repr=False)

    def attach(self, fileno: int) -> None:
        """Keep a duplicate of a new connection's socket (closed again by `detach`)."""
        self.detach()
        self._sock = socket.fromfd(fileno, socket.AF_INET, socket.SOCK_STREAM)
        self._register()

    def detach(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def enter(self, seconds: float) -> None:
        self.depth += 1
        if self.depth == 1:
            limit = _limit.get()
            if _lifted.get():
                seconds = 0
            elif limit is not None:
                seconds = limit if seconds <= 0 else min(seconds, limit)
            self.seconds = seconds
        self._register()

    def leave(self) -> float | None:
        """End the call; the seconds it was given if the watchdog had to cut it, else None."""
        killed = None
        if self.call is not None and self.depth == self.owner_depth:
            call, self.call = self.call, None
            if _watchdog.unregister(id(self), call):
                killed = call.seconds
        self.depth -= 1
        return killed

    def _register(self) -> None:
        if self.call is None and self.depth > 0 and self._sock is not None and self.seconds > 0:
            self.call = _watchdog.register(id(self), self._sock, self.seconds)
            self.owner_depth = self.depth


# --- the scope of one request or task -----------------------------------------------------------


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    token = open_scope()
    try:
        yield
    finally:
        close_scope(token)


def open_scope() -> Any:
    """Start a scope; return the token for `close_scope` (for hooks that cannot use `with`).

    A scope opened inside another (a task run inline by a request) inherits what it knows.
    """
    outer = _scope.get()
    return _scope.set(_Scope(stalled=outer.stalled if outer is not None else ""))


def close_scope(token: Any) -> None:
    _scope.reset(token)


def mark_stalled(reason: str) -> None:
    scope = _scope.get()
    if scope is not None and not scope.stalled:
        scope.stalled = reason


def stalled() -> str:
    """Why the database is considered stalled in the current scope, or "" if it is not."""
    scope = _scope.get()
    return scope.stalled if scope is not None else ""


@contextlib.contextmanager
def limit(seconds: float) -> Iterator[None]:
    """Give the database calls inside at most `seconds` each (never more than the alias allows).

    For callers with a tighter promise than the default deadline, e.g. the health checks.
    """
    current = _limit.get()
    token = _limit.set(seconds if current is None else min(current, seconds))
    try:
        yield
    finally:
        _limit.reset(token)


@contextlib.contextmanager
def lifted() -> Iterator[None]:
    """No deadline for the calls inside: maintenance (creating, dropping, flushing a database)."""
    token = _lifted.set(True)
    try:
        yield
    finally:
        _lifted.reset(token)


class DeadlineScopeMiddleware:
    """First in MIDDLEWARE: everything a request does, error pages included, shares one scope."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            return self.get_response(request)
