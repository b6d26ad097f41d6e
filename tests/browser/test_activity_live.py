"""The dashboard with its live stream: a committed entry appears without any poll."""

import threading

import pytest
from django.db import connection

from audit.models import Action
from audit.services import AuditEntry, audit_record
from monitoring import live
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pushing(settings):
    settings.ACTIVITY_PUSH = True
    # Polling so rare that only the stream can bring the entry within the test's wait.
    settings.ACTIVITY_POLL_SECONDS = 3600
    yield
    live.stop_doorbell()


def _commit_elsewhere(description):
    def run():
        try:
            audit_record(AuditEntry(Action.LEAD_CREATED, description=description))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_a_new_entry_arrives_through_the_stream(live_server, new_page, founder, pushing):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/dashboard/activity")
    page.fill("#id_email", founder.email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    root = page.locator("#activity")
    expect(root).to_have_attribute("data-live", "push")
    expect(page.locator("#refresh-mode")).to_have_text("live")
    expect(root).to_have_attribute("data-state", "idle")

    _commit_elsewhere("pushed, not polled")
    expect(page.locator("#feed .description").first).to_have_text("pushed, not polled")

    # Auto-refresh off closes the stream: the page says it polls again.
    page.uncheck("#auto-refresh")
    expect(root).to_have_attribute("data-live", "poll")


def test_without_a_stream_the_page_says_it_polls(live_server, new_page, founder, settings):
    # ACTIVITY_PUSH is off (the browser tests' default): the server answers 204.
    settings.ACTIVITY_POLL_SECONDS = 10
    page = new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/dashboard/activity")
    page.fill("#id_email", founder.email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    from playwright.sync_api import expect

    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")
    expect(page.locator("#activity")).to_have_attribute("data-live", "poll")
    expect(page.locator("#refresh-mode")).to_have_text("every 10 s")
