"""A real Sentry ingest on 127.0.0.1: SDKs post their envelopes here and tests read them back.

It answers browsers' cross-origin posts (CORS open to any origin), so the browser SDK's fetch
completes as it does against Sentry; every request is kept as it arrived for tests that check
what a client sent besides the envelope (its headers, the URL).
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sentry_sdk
from sentry_sdk.envelope import Envelope


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Ingest:
    def __init__(self, dsn_host: str = "127.0.0.1") -> None:
        """`dsn_host` names the listening address in the DSN (localhost or 127.0.0.1)."""
        self.envelopes: list[Envelope] = []
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        port = self.server.server_address[1]
        self.origin = f"http://{dsn_host}:{port}"
        self.dsn = f"http://publickey@{dsn_host}:{port}/1"

    def _handler(self):
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def _cors(self):
                # As permissive as CORS gets (credentials allowed too), so that only what the
                # client chose to send decides what arrives.
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Vary", "Origin")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.send_header("Access-Control-Allow-Methods", "POST")
                self.send_header(
                    "Access-Control-Expose-Headers", "X-Sentry-Rate-Limits, Retry-After"
                )

            def do_OPTIONS(self):
                self.send_response(204)
                self._cors()
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with ingest.lock:
                    ingest.requests.append(Received(self.path, dict(self.headers.items()), body))
                    ingest.envelopes.append(Envelope.deserialize(body))
                self.send_response(200)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def items(self, kind: str) -> list[dict]:
        sentry_sdk.flush(timeout=5)
        with self.lock:
            return [
                item.payload.json
                for envelope in self.envelopes
                for item in envelope.items
                if item.type == kind
            ]

    def item_types(self) -> list[str]:
        with self.lock:
            return [item.type for envelope in self.envelopes for item in envelope.items]

    def events(self) -> list[dict]:
        return self.items("event")

    def transactions(self) -> list[dict]:
        return self.items("transaction")
