"""A database server that stops answering on a connection already open (the case that
statement_timeout and connect_timeout alone do not cover): health must still answer in seconds."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import close_old_connections, connections
from django.test import Client

from monitoring.checks import reset_health_cache


class FreezableProxy:
    """A TCP proxy in front of PostgreSQL that can stop passing bytes, as a hung server does."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.frozen = threading.Event()
        self.closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.frozen.is_set():
                continue  # accepted by the kernel, never answered
            upstream = socket.create_connection(self.upstream)
            self.sockets.append(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.05)
        while not self.closing.is_set():
            if self.frozen.is_set():
                time.sleep(0.05)
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            dst.sendall(data)

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def health_via_proxy(settings):
    conn = connections["health"]
    original = dict(conn.settings_dict)
    proxy = FreezableProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    conn.close()
    conn.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))
    settings.HEALTH_CHECK_DATABASE = "health"
    reset_health_cache()
    try:
        yield proxy
    finally:
        proxy.frozen.clear()
        proxy.close()
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(original)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "health"])
def test_a_server_that_freezes_after_answering_gives_503_within_about_two_seconds(
    health_via_proxy,
):
    # Both requests on one thread, as one gunicorn worker serves them: a kept-alive connection
    # would be reused by the second. The test client skips Django's end-of-request connection
    # handling, so it is done here as the real request handler does it.
    client = Client()
    first_done, answers = threading.Event(), []

    def uptime_monitor() -> None:
        answers.append(client.get("/api/system/health"))
        close_old_connections()
        first_done.set()
        while not health_via_proxy.frozen.is_set():
            time.sleep(0.01)
        reset_health_cache()
        answers.append(client.get("/api/system/health"))

    worker = threading.Thread(target=uptime_monitor, daemon=True)
    worker.start()
    assert first_done.wait(10)
    health_via_proxy.frozen.set()
    started = time.monotonic()
    worker.join(10)
    elapsed = time.monotonic() - started

    assert not worker.is_alive(), "health hung on a frozen database connection"
    assert [a.status_code for a in answers] == [200, 503]
    assert answers[1].json()["status"] == "unhealthy"
    assert elapsed < 3.5
