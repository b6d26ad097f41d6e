"""A database server that stops answering on a connection already open (the case that
statement_timeout and connect_timeout alone do not cover): health must still answer in seconds."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections, connections
from django.test import Client

from monitoring.checks import reset_health_cache
from tests.dbproxy import routed_through


@pytest.fixture
def health_via_proxy(settings, db_proxy):
    settings.HEALTH_CHECK_DATABASE = "health"
    reset_health_cache()
    db = connections["health"].settings_dict
    with routed_through(
        db_proxy,
        ("health",),
        call_deadline=db.get("CALL_DEADLINE", 0),
        statement_timeout=5,
        lock_timeout=3,
        idle_in_transaction_timeout=10,
    ):
        yield db_proxy


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "health"])
def test_a_server_that_freezes_after_answering_gives_503_within_about_two_seconds(
    health_via_proxy,
):
    # Both requests on one thread, as one gunicorn worker serves them: a kept-alive connection
    # would be reused by the second. The test client skips Django's end-of-request connection
    # handling, so it is done here as the real request handler does it.
    client = Client()
    first_done, frozen, answers = threading.Event(), threading.Event(), []

    def uptime_monitor() -> None:
        answers.append(client.get("/api/system/health"))
        close_old_connections()
        first_done.set()
        frozen.wait(10)
        reset_health_cache()
        answers.append(client.get("/api/system/health"))

    worker = threading.Thread(target=uptime_monitor, daemon=True)
    worker.start()
    assert first_done.wait(10)
    health_via_proxy.stall()
    frozen.set()
    started = time.monotonic()
    worker.join(10)
    elapsed = time.monotonic() - started

    assert not worker.is_alive(), "health hung on a frozen database connection"
    assert [a.status_code for a in answers] == [200, 503]
    assert answers[1].json()["status"] == "unhealthy"
    assert elapsed < 3.5
