"""A TCP proxy on 127.0.0.1 between the app and PostgreSQL that passes, stalls or drops.

What a hung server, a frozen network path or a restarted database look like from the app's side,
made on demand and at an exact point of a request:

* `stall()` / `resume()`: no byte moves in either direction on any connection; new connections
  are accepted (by the kernel) and never answered. Held bytes move again on `resume()`.
* `stall_on(b'INSERT INTO "payments_payment"')`: pass until a client sends a statement containing
  those bytes, then stall everything from that statement on (the statement itself is held).
* `drop_on(pattern)` / `drop()`: close the connection(s) on both sides, as a server restart does;
  new connections pass (or, with `refuse_new=True`, are closed at once).

* `cut_at_commit(marker, forward_commit=…)`: at the COMMIT of the first transaction that sent
  `marker`, forward that COMMIT to the server (it commits, the reply is lost) or swallow it (it
  never commits); either way the client's side is closed and the server's half-closed, so the
  backend finishes what it was sent and then sees its client gone. What a COMMIT whose reply is
  lost looks like, at exactly that COMMIT.

`triggered` is set once a `stall_on` / `drop_on` / `cut_at_commit` point was reached, so a test
can wait for the moment the request is stuck instead of sleeping; `connections_made` counts the
connections the app opened (`connections_at_trigger`: how many when the pattern was seen).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from django.db import connections

from core.database import postgres_options

# psycopg sends COMMIT and ROLLBACK as simple Query messages of their own: 'Q', length, text.
_COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"
_ROLLBACK = b"Q\x00\x00\x00\x0dROLLBACK\x00"


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket, flowing: bool) -> None:
        self.client, self.upstream = client, upstream
        self.flowing = threading.Event()
        if flowing:
            self.flowing.set()
        self.marked = False  # this connection's transaction sent the cut_at_commit marker
        self.cut = False  # the client's side was cut: what the server sends is drained


class DatabaseProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.triggered = threading.Event()
        self.connections_made = 0
        self.connections_at_trigger: int | None = None
        self._stalled = False
        self._closing = False
        self._refuse_new = False
        self._refuse_after_drop = False
        self._trigger: tuple[bytes, str] | None = None
        self._commit_cut: tuple[bytes, bool, bool] | None = None
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        threading.Thread(target=self._accept, name="db-proxy-accept", daemon=True).start()

    # --- control ---------------------------------------------------------------------------

    def stall(self) -> None:
        """Nothing moves on any connection, and new connections are never answered."""
        with self._lock:
            self._stalled = True
            for pair in self._pairs:
                pair.flowing.clear()

    def freeze_existing(self) -> None:
        """The open connections stop moving; new ones work (a half-dead kept-alive connection)."""
        with self._lock:
            for pair in self._pairs:
                pair.flowing.clear()

    def resume(self) -> None:
        with self._lock:
            self._trigger = None
            self._stalled = False
            for pair in self._pairs:
                pair.flowing.set()

    def stall_on(self, pattern: bytes) -> None:
        self.triggered.clear()
        self._trigger = (pattern, "stall")

    def drop_on(self, pattern: bytes, *, refuse_new: bool = False) -> None:
        self.triggered.clear()
        self._refuse_after_drop = refuse_new
        self._trigger = (pattern, "drop")

    def cut_at_commit(
        self, marker: bytes, *, forward_commit: bool, refuse_new: bool = False
    ) -> None:
        """At the COMMIT of the first transaction that sends `marker`: forward it or not, then
        cut the client off without the reply. `refuse_new`: the database then looks gone."""
        self.triggered.clear()
        self._commit_cut = (marker, forward_commit, refuse_new)

    def drop(self, *, refuse_new: bool = False) -> None:
        """Close every open connection on both sides; new ones pass unless `refuse_new`."""
        with self._lock:
            self._refuse_new = refuse_new
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.flowing.set()
            _shut(pair.client, pair.upstream)

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        self.drop()

    # --- plumbing --------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self._closing or self._refuse_new:
                _shut(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                _shut(client)
                continue
            with self._lock:
                pair = _Pair(client, upstream, flowing=not self._stalled)
                self._pairs.append(pair)
                self.connections_made += 1
            for src, dst, inspect in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump,
                    args=(pair, src, dst, inspect),
                    name="db-proxy-pump",
                    daemon=True,
                ).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, inspect: bool) -> None:
        tail = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                _shut(src, dst)
                return
            if pair.cut and not inspect:
                continue  # the server's reply to a cut COMMIT: read and dropped
            if inspect and self._commit_cut is not None and self._cut_commit(pair, data):
                return
            trigger = self._trigger if inspect else None
            if trigger is not None:
                pattern, action = trigger
                if pattern in tail + data:
                    self._trigger = None
                    self.connections_at_trigger = self.connections_made
                    if action == "drop":
                        self.drop(refuse_new=self._refuse_after_drop)
                        self.triggered.set()
                        return
                    self.stall()
                    self.triggered.set()
                tail = data[-len(pattern) :]
            pair.flowing.wait()  # a stall holds the bytes here until resume()
            if self._closing:
                _shut(src, dst)
                return
            try:
                dst.sendall(data)
            except OSError:
                _shut(src, dst)
                return

    def _cut_commit(self, pair: _Pair, data: bytes) -> bool:
        # Each of these messages comes alone in its chunk: psycopg sends a statement and waits
        # for its result before sending the next.
        if self._commit_cut is None:
            return False
        marker, forward_commit, refuse_new = self._commit_cut
        if marker in data:
            pair.marked = True
        if not pair.marked:
            return False
        if _ROLLBACK in data:
            pair.marked = False
            return False
        if _COMMIT not in data:
            return False
        self._commit_cut = None
        if forward_commit:
            pair.upstream.sendall(data)
        pair.cut = True
        if refuse_new:
            self._refuse_new = True
        _shut(pair.client)
        # A FIN after the COMMIT, not a reset: the server reads what it was sent, then EOF.
        with contextlib.suppress(OSError):
            pair.upstream.shutdown(socket.SHUT_WR)
        self.triggered.set()
        return True


def _shut(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


# --- pointing Django's connections at a proxy ---------------------------------------------------


def server_options(
    *, statement_timeout: float, lock_timeout: float, idle_in_transaction_timeout: float
) -> dict[str, Any]:
    """OPTIONS with the given server timeouts and the production connection settings."""
    return postgres_options(
        connect_timeout=2,
        statement_timeout=statement_timeout,
        lock_timeout=lock_timeout,
        idle_in_transaction_timeout=idle_in_transaction_timeout,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
        tcp_user_timeout=10,
    )


@contextlib.contextmanager
def routed_through(
    proxy: DatabaseProxy,
    aliases: tuple[str, ...],
    *,
    call_deadline: float,
    statement_timeout: float,
    lock_timeout: float,
    idle_in_transaction_timeout: float,
) -> Iterator[None]:
    """Make this thread's connections of `aliases` go through `proxy` with these limits."""
    saved = {}
    for alias in aliases:
        conn = connections[alias]
        saved[alias] = {**conn.settings_dict, "OPTIONS": dict(conn.settings_dict["OPTIONS"])}
        conn.close()
        conn.settings_dict.update(
            HOST="127.0.0.1",
            PORT=str(proxy.port),
            CALL_DEADLINE=call_deadline,
            OPTIONS=server_options(
                statement_timeout=statement_timeout,
                lock_timeout=lock_timeout,
                idle_in_transaction_timeout=idle_in_transaction_timeout,
            ),
        )
    try:
        yield
    finally:
        for alias, original in saved.items():
            conn = connections[alias]
            conn.close()
            conn.settings_dict.clear()
            conn.settings_dict.update(original)
