"""Real far ends on 127.0.0.1: Slack/Discord/generic webhook servers and an SMTP server."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # the far end being slow, to trip our client's timeout


class WebhookServer:
    """Answers each path from a script of replies (the last one repeats) and records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.scripts: dict[str, list[Reply]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path: str, *replies: Reply) -> str:
        self.scripts[path] = list(replies)
        return self.base + path

    def received(self, path: str) -> list[dict]:
        with self.lock:
            return [body for p, body in self.requests if p == path]

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    owner.requests.append((self.path, json.loads(body)))
                    script = owner.scripts.setdefault(self.path, [Reply()])
                    reply = script.pop(0) if len(script) > 1 else script[0]
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, which is what a slow reply is for

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def webhooks():
    server = WebhookServer()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.refuse: set[str] = set()  # recipients answered with a permanent 550
        self.data_reply = ""  # e.g. "451 …": the message itself is answered with it
        self.rcpt_reply = ""  # e.g. "450 …": every recipient is answered with it

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user"
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf8", errors="replace"),
            }
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """aiosmtpd on 127.0.0.1 with Django's SMTP backend pointed at it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    mailbox.controller = controller
    yield mailbox
    controller.stop()


@pytest.fixture
def channels(settings, webhooks, smtp_server):
    """Founders' e-mail plus Slack, Discord and a generic JSON webhook, all local."""
    settings.FOUNDER_ALERT_EMAILS = ["founder@planbeta.example", "cofounder@planbeta.example"]
    settings.ALERT_WEBHOOK_URLS = [
        "slack+" + webhooks.script("/slack", Reply(200, b"ok")),
        "discord+" + webhooks.script("/discord", Reply(204, b"")),
        "json+" + webhooks.script("/hook", Reply(200, b"{}")),
    ]
    settings.ALERT_WEBHOOK_TIMEOUT = 2
    settings.ALERT_BASE_URL = "https://office.planbeta.example"
    return {"webhooks": webhooks, "mail": smtp_server}


@pytest.fixture
def celery_on_redis():
    """Celery on the real Redis (REDIS_URL, db 13 here) instead of eager; yields a switch to point
    the broker elsewhere, e.g. at a dead port."""
    from planbeta.celery import app

    live_url = os.environ["REDIS_URL"]
    saved = (app.conf.broker_url, app.conf.task_always_eager)

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        # Drop pooled connections to the previous broker, as Celery does after a fork.
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.task_always_eager = False
    point_at(live_url)
    app.control.purge()
    yield point_at
    point_at(live_url)
    app.control.purge()
    app.conf.task_always_eager = saved[1]
    point_at(saved[0])
