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
    expect(entries.nth(0).locator(".action")).to_have_text("LOGIN")
    expect(entries.nth(1).locator(".description")).to_have_text(
        f"Lead {XSS_NAME} created (source META_ADS)"
    )
    assert page.locator("#feed img").count() == 0
    expect(entries.nth(1).locator(".who")).to_have_text("Fiona Founder <founder@example.com>")
    expect(entries.nth(0).locator(".ip")).to_have_text("IP 127.0.0.1")
    # Date with the time of day and the time zone.
    when = re.compile(r"\d{2}:\d{2}:\d{2} GMT\+5:30$")
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
    expect(entries).to_have_count(3, timeout=5000)
    expect(entries.nth(0).locator(".action")).to_have_text("PAYMENT_RECEIVED")
    expect(entries.nth(0).locator(".badge")).to_have_text("ERROR")
    expect(entries.nth(0).locator(".error-message")).to_have_text("RuntimeError: gateway said no")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#stat-errors")).to_have_text("1")
    top = page.locator("#top-actions li")
    expect(top).to_have_count(3)
    expect(top.nth(0)).to_have_text("LEAD_CREATED1")  # ties by name: 1 each

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

    page = new_page()
    page.clock.install()  # the page's timers run on a clock the test moves
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "after=" in r.url else None)
    _log_in(page, live_server.url, founder.email)
    entries = page.locator("#feed > li.entry")
    expect(entries).to_have_count(1)  # the login

    _create_lead_through_the_api(live_server.url, founder, "First Lead")
    page.clock.run_for(9_000)
    assert polls == []
    page.clock.run_for(1_000)  # the default interval: 10 s
    expect(entries).to_have_count(2)
    expect(entries.nth(0).locator(".description")).to_have_text(
        "Lead First Lead created (source REFERRAL)"
    )
    assert len(polls) == 1

    page.uncheck("#auto-refresh")
    _in_background(lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="while off")))
    page.clock.run_for(60_000)
    assert len(polls) == 1
    page.check("#auto-refresh")  # catches up at once
    expect(entries.nth(0).locator(".description")).to_have_text("while off")
    assert len(polls) == 2

    _set_hidden(page, True)
    _in_background(
        lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="while hidden"))
    )
    page.clock.run_for(60_000)
    assert len(polls) == 2
    _set_hidden(page, False)
    expect(entries.nth(0).locator(".description")).to_have_text("while hidden")
    expect(entries).to_have_count(4)


def test_a_row_that_commits_after_a_newer_one_was_shown_still_appears(
    live_server, new_page, founder
):
    from playwright.sync_api import expect

    page = new_page()
    page.clock.install()
    _log_in(page, live_server.url, founder.email)
    entries = page.locator("#feed > li.entry")
    expect(entries).to_have_count(1)  # the login

    # A business transaction draws its audit row's id, and commits only after a newer row was
    # written, committed and shown.
    inserted, commit = threading.Event(), threading.Event()

    def slow_business_transaction():
        try:
            with transaction.atomic():
                audit_record(AuditEntry(Action.PAYMENT_RECEIVED, description="committed late"))
                inserted.set()
                commit.wait(10)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_business_transaction)
    slow.start()
    assert inserted.wait(10)
    _in_background(
        lambda: audit_record(AuditEntry(Action.LEAD_CREATED, description="committed first"))
    )
    page.clock.run_for(10_000)
    expect(entries.nth(0).locator(".description")).to_have_text("committed first")

    commit.set()
    slow.join(10)
    page.clock.run_for(10_000)
    expect(entries).to_have_count(3)
    expect(entries.nth(0).locator(".description")).to_have_text("committed late")
    assert (
        sorted(page.locator("#feed .description").all_text_contents()).count("committed first") == 1
    )


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
