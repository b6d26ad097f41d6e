"""The local Sentry ingest (ingest.py), the SDK initialised against it, the WSGI handler."""

from __future__ import annotations

import pytest
import sentry_sdk

from planbeta.sentry import sentry_options
from tests.sentry.ingest import Ingest


@pytest.fixture
def ingest():
    server = Ingest()
    server.start()
    yield server
    server.stop()


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
