"""The live stream under real gunicorn: threaded workers stream, sync workers decline."""

from __future__ import annotations

import http.client
import os

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client

from audit.models import Action
from audit.services import AuditEntry, audit_record
from monitoring import live
from tests.gunicorn import http_request, serving

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/dashboard/activity/events"


def _env(tmp_path) -> dict[str, str]:
    db = connections["default"].settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("CI", "REDIS_URL", "DEBUG", "PROMETHEUS_MULTIPROC_DIR")
        },
        "DATABASE_URL": f"postgres://{db['USER']}@{host}/{db['NAME']}",
        # The test's own key: the session it signs in with must decode there.
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
        "LOG_LEVEL": "WARNING",
        "ACTIVITY_STREAM_HEARTBEAT_SECONDS": "30",
    }


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _read_event(response) -> bytes:
    lines = []
    while (line := response.readline()) not in (b"\n", b""):
        lines.append(line)
    return b"".join(lines) + b"\n"


def test_the_events_service_streams_a_commit_to_a_founder(founder, tmp_path):
    cookie = _session_cookie(founder)
    with serving(_env(tmp_path), tmp_path / "gunicorn.log", workers=1,
                 config="deploy/gunicorn_events.conf.py") as port:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", URL, headers={"Host": "127.0.0.1", "Cookie": cookie})
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Type") == "text/event-stream"
            assert _read_event(response) == live.READY
            with transaction.atomic():
                audit_record(AuditEntry(Action.LEAD_CREATED, description="seen live"))
            # A heartbeat is 30 s away: what comes now is the ring.
            assert _read_event(response) == live.AUDIT
        finally:
            conn.close()


def test_the_web_service_sends_the_page_to_polling(founder, tmp_path):
    cookie = _session_cookie(founder)
    with serving(_env(tmp_path), tmp_path / "gunicorn.log", workers=1) as port:
        status, _, body = http_request(port, "GET", URL, headers={"Cookie": cookie})
    assert (status, body) == (204, b"")
