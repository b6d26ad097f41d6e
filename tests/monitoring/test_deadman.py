"""Beat's check run: each check's state over time, and the dead man's switch it pings (a real
HTTP server on 127.0.0.1 stands in for healthchecks.io)."""

import logging
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditLog
from monitoring import checks, deadman, services
from monitoring.models import CheckChange, CheckState
from monitoring.tasks import check_run
from tests.alerts.conftest import Reply, webhooks  # noqa: F401 - the local HTTP server fixture

pytestmark = pytest.mark.django_db

PING = "/ping/5bf66975-d4c7-4bf2-bcbe-3e2ab1a0b9f1"


@pytest.fixture
def switch(webhooks, settings):  # noqa: F811
    settings.DEADMAN_PING_URL = webhooks.base + PING
    return webhooks


def _fail_money(audit_rows, n=2):
    audit_rows(action="PAYMENT_RECEIVED", CRITICAL=n)


def test_a_check_run_pings_the_switch_with_a_summary(switch):
    run = services.run_scheduled_checks()

    assert run.failed is False
    assert switch.received(PING) == [{"site": "healthy", "money": "healthy", "notHealthy": []}]
    assert switch.received(PING + "/fail") == []


def test_the_beat_task_pings_too(switch):
    check_run.delay()
    assert len(switch.received(PING)) == 1


def test_unhealthy_money_operations_ping_the_fail_url(switch, audit_rows):
    _fail_money(audit_rows)

    run = services.run_scheduled_checks()

    assert run.failed is True
    assert switch.received(PING) == []
    assert switch.received(PING + "/fail") == [
        {"site": "degraded", "money": "unhealthy", "notHealthy": ["moneyOperations"]}
    ]


def test_a_degraded_site_is_still_a_success_ping(switch, settings):
    settings.FOUNDER_ALERT_EMAILS = []
    services.run_scheduled_checks()
    assert switch.received(PING) == [
        {"site": "degraded", "money": "healthy", "notHealthy": ["alerting"]}
    ]


def test_a_check_run_that_breaks_pings_fail_and_is_recorded(switch, monkeypatch):
    def broken():
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(services, "run_checks", broken)

    run = services.run_scheduled_checks()

    assert run.failed is True
    assert switch.received(PING + "/fail") == [{"error": "The check run failed (RuntimeError)"}]
    row = AuditLog.objects.get()
    assert (row.action, row.severity) == ("SYSTEM_ERROR", "ERROR")
    assert "RuntimeError" in row.description


def test_a_switch_that_does_not_answer_costs_the_timeout_and_never_raises(switch, settings, caplog):
    switch.script(PING, Reply(200, b"OK", delay=5))
    settings.DEADMAN_PING_TIMEOUT = 0.3
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="monitoring.deadman"):
        answered = deadman.ping(fail=False, summary={"site": "healthy"})
    assert answered is False
    assert time.monotonic() - started < 3
    assert [r.getMessage() for r in caplog.records] == ["deadman: ping failed (TimeoutError)"]
    assert "5bf66975" not in caplog.text  # the URL is the switch's secret


@pytest.mark.parametrize("reply", [Reply(500, b"no"), Reply(404, b"not found")])
def test_a_switch_that_refuses_the_ping_is_logged_not_raised(switch, reply, caplog):
    switch.script(PING, reply)
    with caplog.at_level(logging.WARNING, logger="monitoring.deadman"):
        assert deadman.ping(fail=False, summary={}) is False
    assert caplog.records[0].getMessage() == "deadman: ping failed (HTTPError)"


def test_a_switch_that_is_not_there_is_logged_not_raised(settings, caplog):
    from tests.alerts.conftest import free_port

    settings.DEADMAN_PING_URL = f"http://127.0.0.1:{free_port()}/ping/x"
    with caplog.at_level(logging.WARNING, logger="monitoring.deadman"):
        assert deadman.ping(fail=True, summary={}) is False
    assert caplog.records[0].getMessage() == "deadman: ping failed (URLError)"


def test_without_a_url_nothing_is_sent(webhooks, settings):  # noqa: F811
    settings.DEADMAN_PING_URL = ""
    services.run_scheduled_checks()
    assert webhooks.requests == []


@pytest.mark.parametrize(
    ("url", "fail"),
    [
        ("https://hc-ping.com/uuid", "https://hc-ping.com/uuid/fail"),
        ("https://hc-ping.com/uuid/", "https://hc-ping.com/uuid/fail"),
        (
            "https://hc.example/ping/key/slug?create=1",
            "https://hc.example/ping/key/slug/fail?create=1",
        ),
    ],
)
def test_the_fail_url_is_the_ping_url_plus_fail(url, fail):
    assert deadman.fail_url(url) == fail


# --- each check's state over time -------------------------------------------------------------


def test_a_check_run_records_each_check_and_since_when(settings, audit_rows):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        services.run_scheduled_checks()
        clock.shift(60)
        services.run_scheduled_checks()  # nothing changed
        clock.shift(60)
        _fail_money(audit_rows, n=1)
        services.run_scheduled_checks()

    states = {s.name: s for s in CheckState.objects.all()}
    assert set(states) == set(checks.run_checks().results)
    assert (states["database"].status, states["database"].since) == ("healthy", start)
    assert states["database"].checked_at == start + timedelta(seconds=120)
    money = states["moneyOperations"]
    assert (money.status, money.since) == ("degraded", start + timedelta(seconds=120))
    changes = list(CheckChange.objects.filter(name="moneyOperations"))
    assert [(c.old_status, c.new_status, c.changed_at) for c in changes] == [
        ("healthy", "degraded", start + timedelta(seconds=120)),
        ("", "healthy", start),
    ]


def test_an_older_report_does_not_overwrite_a_newer_one():
    older = checks.run_checks()
    newer = checks.run_checks()
    services.record_check_states(newer)
    assert services.record_check_states(older) == []
    assert CheckState.objects.get(name="database").checked_at == newer.checked_at


@pytest.mark.postgres
def test_while_the_database_is_down_the_run_still_pings_fail(switch, settings, refused_database):
    run = services.run_scheduled_checks()
    assert run.failed is True
    [ping] = switch.received(PING + "/fail")
    assert ping["site"] == "unhealthy"
    assert ping["notHealthy"][0] == "database"
