"""A real Sentry ingest on 127.0.0.1: the SDK posts its envelopes here and tests read them back."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope

from planbeta.sentry import sentry_options


class Ingest:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def _handler(self):
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with ingest.lock:
                    ingest.envelopes.append(Envelope.deserialize(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        return Handler

    def items(self, kind: str) -> list[dict]:
        sentry_sdk.flush(timeout=5)
        with self.lock:
            return [
                item.payload.json
                for envelope in self.envelopes
                for item in envelope.items
                if item.type == kind
            ]

    def events(self) -> list[dict]:
        return self.items("event")

    def transactions(self) -> list[dict]:
        return self.items("transaction")


@pytest.fixture
def ingest():
    server = Ingest()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _close_sdk() -> None:
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def sentry(ingest):
    """The SDK initialised with our production options against the local ingest, closed after."""
    sentry_sdk.init(
        **sentry_options(
            dsn=ingest.dsn, environment="production", release="1.2.3", traces_sample_rate=1.0
        )
    )
    yield ingest
    _close_sdk()


@pytest.fixture
def sdk_closed_after():
    yield
    _close_sdk()


@pytest.fixture
def wsgi():
    """Call the real WSGI handler, as gunicorn does; the SDK's WSGI layer sees the request."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import RequestFactory

    handler = WSGIHandler()
    factory = RequestFactory()

    def call(method: str, path: str, **kwargs):
        environ = getattr(factory, method.lower())(path, **kwargs).environ
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = dict(headers)

        body = b"".join(handler(environ, start_response))
        return captured["status"], captured["headers"], body

    # As Django's test client does: the handler must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield call
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
