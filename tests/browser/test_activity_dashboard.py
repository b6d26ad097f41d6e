import datetime
import json
import re
import threading
import urllib.request

import pytest
from django.db import connection, transaction

from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent
from tests.conftest import PASSWORD
from tests.factories import make_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS_NAME = "<img src=x onerror=alert(1)>"


def _log_in(page, base_url, email, next_path="/dashboard/activity"):
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


# Every fetch the page starts, in order, and whether it has settled: recorded in the page itself,
# so a test can tell at once, and for certain, whether a poll was sent.
FETCH_RECORDER = """
(() => {
  const fetch = window.fetch;
  window.__reads = [];
  window.fetch = function (input, init) {
    const read = { url: String(input instanceof Request ? input.url : input), done: false };
    window.__reads.push(read);
    return fetch.call(this, input, init).finally(() => { read.done = true; });
  };
})();
"""
POLL = "after="  # only a poll reads forward from a cursor
STATS = "type=stats"


def _controlled(page):
    """The page's timers on a clock that stands still until the test moves it, its reads recorded.

    The clock is paused before the first page loads: a clock that flows with real time would fire
    a poll by itself whenever the machine is slow between two steps of the test.
    """
    start = datetime.datetime.now(tz=datetime.UTC)
    page.add_init_script(FETCH_RECORDER)
    page.clock.install(time=start)
    page.clock.pause_at(start + datetime.timedelta(seconds=1))
    return page


def _reads(page, part, *, done=None):
    """How many of the page's reads had `part` in their address (only settled ones if done)."""
    return page.evaluate(
        "([part, done]) => window.__reads.filter("
        "r => r.url.includes(part) && (done === null || r.done === done)).length",
        [part, done],
    )


def _idle(page):
    """Wait until nothing is on its way and the next poll, if any, is waiting on its timer."""
    from playwright.sync_api import expect

    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")


def _next_poll(page, ms=10_000):
    """Move the clock to the next poll, once the page is waiting for it."""
    _idle(page)
    page.clock.run_for(ms)


def _dashboard_on_a_paused_clock(live_server, new_page, founder):
    """The founder's dashboard on the paused clock, loaded (the login is its one entry), idle."""
    from playwright.sync_api import expect

    page = _controlled(new_page())
    _log_in(page, live_server.url, founder.email)
    entries = page.locator("#feed > li.entry")
    expect(entries).to_have_count(1)
    _idle(page)
    return page, entries


class Held:
    """The page's requests whose address contains `part`, held back until `release`."""

    def __init__(self, page, part):
        self.page = page
        self.part = part
        self.routes = []
        self.released = False
        page.route(lambda address: part in address, self._hold)

    def _hold(self, route):
        if self.released:
            route.continue_()
        else:
            self.routes.append(route)

    def release(self):
        """Let the held requests go on, and every later one straight through."""
        # A round trip first: the route reaches this side right behind the request it holds.
        self.page.evaluate("0")
        assert self.routes, f"no request for {self.part} was held"
        self.released = True
        for route in self.routes:
            route.continue_()


def _answer_once(page, part, status=503):
    """The page's next request whose address contains `part` gets `status` (the database away)."""
    body = json.dumps({"error": "Service unavailable", "code": "service_unavailable"})
    page.route(
        lambda address: part in address,
        lambda route: route.fulfill(status=status, content_type="application/json", body=body),
        times=1,
    )


def _in_background(fn):
    """Write as another process would: its own connection, committed before the next poll."""

    def run():
        try:
            fn()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def _create_lead_through_the_api(base_url, user, name):
    """The event comes from the API, as a colleague's script would create it."""
    body = json.dumps({"name": name, "whatsapp": "+919847000001", "source": "REFERRAL"})
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        f"{base_url}/api/leads",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {make_token(user)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201


def test_founder_watches_the_feed_update_live(live_server, new_page, founder, settings):
    from playwright.sync_api import expect

    settings.ACTIVITY_POLL_SECONDS = 1
    audit_record(
        AuditEntry(
            Action.LEAD_CREATED,
            description=f"Lead {XSS_NAME} created (source META_ADS)",
            entity_type="Lead",
            entity_id=41,
            metadata={"leadName": XSS_NAME},
            actor=founder,
        ),
    )
    page = new_page()
    dialogs, csp_errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )

    _log_in(page, live_server.url, founder.email)
    assert page.url == f"{live_server.url}/dashboard/activity"
    entries = page.locator("#feed > li.entry")
    # The login itself is in the feed, newest first, above the lead.
    expect(entries).to_have_count(2)
    expect(entries.nth(0).locator(".action")).to_have_text("Logged in")
    expect(entries.nth(1).locator(".description")).to_have_text(
        f"Lead {XSS_NAME} created (source META_ADS)"
    )
    assert page.locator("#feed img").count() == 0
    expect(entries.nth(1).locator(".who")).to_have_text("Fiona Founder <founder@example.com>")
    expect(entries.nth(0).locator(".ip")).to_have_text("IP 127.0.0.1")
    # Date with the time of day and the school's zone, as every page writes it.
    when = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} IST$")
    expect(entries.nth(1).locator(".when")).to_have_text(when)
    expect(page.locator("#stat-total")).to_have_text("2")
    expect(page.locator("#chart svg rect.bar-total")).to_have_count(24)

    page.evaluate("window.__notReloaded = true")
    _in_background(
        lambda: audit_record_independent(
            AuditEntry(
                Action.PAYMENT_RECEIVED,
                severity=Severity.ERROR,
                description="Payment for PB-2026-0007 failed",
                entity_type="Invoice",
                entity_id=7,
                error=RuntimeError("gateway said no"),
            ),
        )
    )
    expect(entries).to_have_count(3)
    expect(entries.nth(0).locator(".action")).to_have_text("Payment received")
    expect(entries.nth(0).locator(".badge")).to_have_text("ERROR")
    expect(entries.nth(0).locator(".error-message")).to_have_text("RuntimeError: gateway said no")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#stat-errors")).to_have_text("1")
    top = page.locator("#top-actions li")
    expect(top).to_have_count(3)
    expect(top.nth(0)).to_have_text("Lead created1")  # ties by code: 1 each

    page.click("button[data-view=errors]")
    expect(entries).to_have_count(1)
    expect(entries.nth(0).locator(".description")).to_have_text("Payment for PB-2026-0007 failed")

    page.click("button[data-view=all]")
    expect(entries).to_have_count(3)
    entries.nth(2).locator(".entity-link").click()
    expect(page.locator("#entity-filter-label")).to_have_text("Lead #41")
    expect(entries).to_have_count(1)

    assert dialogs == []
    assert csp_errors == []


def _set_hidden(page, hidden: bool) -> None:
    page.evaluate(
        """(hidden) => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_polls_every_ten_seconds_pauses_when_off_or_hidden_and_catches_up(
    live_server, new_page, founder
):
    from playwright.sync_api import expect

    page, entries = _dashboard_on_a_paused_clock(live_server, new_page, founder)

    _create_lead_through_the_api(live_server.url, founder, "First Lead")
    page.clock.run_for(9_000)
    assert _reads(page, POLL) == 0
    page.clock.run_for(1_000)  # the default interval: 10 s
    expect(entries).to_have_count(2)
    expect(entries.nth(0).locator(".description")).to_have_text(
        "Lead First Lead created (source REFERRAL)"
    )
    assert _reads(page, POLL) == 1

    _idle(page)
    page.uncheck("#auto-refresh")
    _in_background(lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="while off")))
    page.clock.run_for(60_000)
    assert _reads(page, POLL) == 1
    page.check("#auto-refresh")  # catches up at once
    expect(entries.nth(0).locator(".description")).to_have_text("while off")
    assert _reads(page, POLL) == 2

    _idle(page)
    _set_hidden(page, True)
    _in_background(
        lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="while hidden"))
    )
    page.clock.run_for(60_000)
    assert _reads(page, POLL) == 2
    _set_hidden(page, False)
    expect(entries.nth(0).locator(".description")).to_have_text("while hidden")
    expect(entries).to_have_count(4)


def test_a_catch_up_asked_for_during_a_refresh_runs_when_that_refresh_ends(
    live_server, new_page, founder
):
    from playwright.sync_api import expect

    page, entries = _dashboard_on_a_paused_clock(live_server, new_page, founder)
    stats = Held(page, STATS)
    page.clock.run_for(10_000)  # a poll: its feed read answers, its statistics are held back
    page.wait_for_function(f"() => window.__reads.some(r => r.url.includes({POLL!r}) && r.done)")
    assert _reads(page, STATS, done=False) == 1

    # The tab is hidden and shown again while that refresh still waits: the catch-up it asks for
    # must not be lost, though the refresh in flight read the feed before the new row was there.
    _in_background(
        lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="during the refresh"))
    )
    _set_hidden(page, True)
    _set_hidden(page, False)
    stats.release()

    # No clock moves: the catch-up itself shows the row.
    expect(entries.nth(0).locator(".description")).to_have_text("during the refresh")
    _idle(page)
    assert _reads(page, POLL) == 2


def test_a_first_feed_read_that_failed_is_read_again_on_the_next_poll(
    live_server, new_page, founder
):
    from playwright.sync_api import expect

    page = _controlled(new_page())
    _answer_once(page, "limit=50")  # the dashboard's first read of the newest entries
    _log_in(page, live_server.url, founder.email)
    entries = page.locator("#feed > li.entry")
    status = page.locator("#status")

    expect(page.locator("#stat-total")).to_have_text("1")  # the statistics did arrive
    expect(status).to_have_text(re.compile(r"^The server answered 503\."))
    expect(status).to_have_class(re.compile(r"\berror\b"))
    assert entries.count() == 0

    page.clock.run_for(10_000)
    expect(entries).to_have_count(1)  # the login, read afresh
    expect(status).to_have_text(re.compile(r"^Updated \d{2}:\d{2} IST$"))
    expect(status).not_to_have_class(re.compile(r"\berror\b"))
    _idle(page)
    assert _reads(page, "limit=50") == 2


def test_a_refresh_ends_only_when_both_its_answers_are_in(live_server, new_page, founder):
    from playwright.sync_api import expect

    page, entries = _dashboard_on_a_paused_clock(live_server, new_page, founder)
    stats = Held(page, STATS)
    _answer_once(page, POLL)
    page.clock.run_for(10_000)  # a poll: the feed read fails at once, the statistics are held
    page.wait_for_function(f"() => window.__reads.some(r => r.url.includes({POLL!r}) && r.done)")

    # However long the statistics take, no second refresh starts beside the first.
    page.clock.run_for(30_000)
    assert _reads(page, POLL) == 1
    assert _reads(page, STATS) == 2  # the first load's and this refresh's

    stats.release()
    expect(page.locator("#status")).to_have_text("The server answered 503. Retrying.")
    expect(page.locator("#activity")).to_have_attribute("data-state", "error")
    page.clock.run_for(10_000)
    expect(page.locator("#status")).to_have_text(re.compile(r"^Updated "))
    _idle(page)
    assert _reads(page, POLL) == 2
    expect(entries).to_have_count(1)


def test_a_row_that_commits_after_a_newer_one_was_shown_still_appears(
    live_server, new_page, founder
):
    from playwright.sync_api import expect

    page = _controlled(new_page())
    _log_in(page, live_server.url, founder.email)
    entries = page.locator("#feed > li.entry")
    expect(entries).to_have_count(1)  # the login

    # A business transaction draws its audit row's id, and commits only after a newer row was
    # written, committed and shown.
    inserted, commit = threading.Event(), threading.Event()
    committed = []

    def slow_business_transaction():
        try:
            with transaction.atomic():
                # Idle in its transaction for as long as the test takes: on a loaded machine that
                # can pass the server's idle_in_transaction_session_timeout (10 s), which would
                # end the session and take the row with it.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                audit_record(AuditEntry(Action.PAYMENT_RECEIVED, description="committed late"))
                inserted.set()
                commit.wait(120)
            committed.append(True)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_business_transaction)
    slow.start()
    try:
        assert inserted.wait(30)
        _in_background(
            lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="committed first"))
        )
        _next_poll(page)
        expect(entries.nth(0).locator(".description")).to_have_text("committed first")
    finally:
        commit.set()
        slow.join(30)
    assert committed == [True]

    _next_poll(page)
    expect(entries).to_have_count(3)
    expect(entries.nth(0).locator(".description")).to_have_text("committed late")
    assert (
        sorted(page.locator("#feed .description").all_text_contents()).count("committed first") == 1
    )


def test_load_older_brings_older_entries_below_once_and_then_hides(live_server, new_page, founder):
    from playwright.sync_api import expect

    for n in range(60):
        audit_record(AuditEntry(Action.LEAD_CREATED, description=f"Lead {n} created"))
    page = _controlled(new_page())
    _log_in(page, live_server.url, founder.email)
    entries = page.locator("#feed > li.entry")
    descriptions = page.locator("#feed .description")
    older = page.locator("#load-older")
    expect(entries).to_have_count(50)  # one page of the 61 (the login is the newest)
    expect(older).to_be_visible()

    # A poll re-reads the last 100 ids, which reach below the 50 shown: those older entries are
    # not news, and stay out of the top of the feed.
    _next_poll(page)
    _idle(page)
    assert _reads(page, POLL) == 1
    expect(entries).to_have_count(50)
    expect(entries.nth(0).locator(".action")).to_have_text("Logged in")

    older.click()
    expect(entries).to_have_count(61)
    _idle(page)
    expect(descriptions.nth(1)).to_have_text("Lead 59 created")
    expect(descriptions.nth(60)).to_have_text("Lead 0 created")
    shown = descriptions.all_text_contents()
    assert len(set(shown)) == len(shown) == 61
    # Nothing older is left: the button is hidden, and hidden means not shown.
    expect(older).to_have_attribute("hidden", "")
    expect(older).to_be_hidden()


def test_an_entry_about_no_particular_entity_names_its_kind_without_a_link(
    live_server, new_page, founder
):
    from playwright.sync_api import expect

    audit_record(AuditEntry(Action.LOGIN_FAILED, description="Failed login", entity_type="User"))
    page = new_page()
    _log_in(page, live_server.url, founder.email)
    failed = page.locator("#feed > li.entry").filter(has_text="Failed login")

    expect(failed.locator(".entity")).to_have_text("User")
    assert failed.locator(".entity-link").count() == 0


def test_marketing_user_is_refused(live_server, new_page, marketing):
    page = new_page()
    _log_in(page, live_server.url, marketing.email, next_path="/")
    response = page.goto(f"{live_server.url}/dashboard/activity")
    assert response.status == 403
    assert page.locator("#feed").count() == 0


def test_api_docs_render_under_the_content_security_policy(live_server, new_page, founder):
    from playwright.sync_api import expect

    page = new_page()
    csp_errors = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    _log_in(page, live_server.url, founder.email, next_path="/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Plan Beta back office API")
    expect(page.locator(".swagger-ui")).to_contain_text("/api/system/audit-logs")
    assert csp_errors == []


def test_admin_pages_work_under_the_content_security_policy(live_server, new_page, founder):
    from playwright.sync_api import expect

    page = new_page()
    csp_errors = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    _log_in(page, live_server.url, founder.email, next_path="/admin/")
    expect(page.locator("#site-name")).to_contain_text("Plan Beta back office")
    page.goto(f"{live_server.url}/admin/audit/auditlog/")
    expect(page.locator("#changelist")).to_be_visible()
    page.locator("#result_list tbody a").first.click()
    expect(page.locator(".field-action")).to_contain_text("LOGIN")
    assert csp_errors == []
