"""Errors thrown in the pages reach a real Sentry ingest on 127.0.0.1, with what they should carry
and without what they must not; without a browser DSN the SDK is not even loaded."""

import json
from urllib.parse import urlsplit

import pytest

from planbeta.browser_sentry import browser_ingest_origin
from tests.conftest import PASSWORD
from tests.factories import make_lead
from tests.sentry.ingest import Ingest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RELEASE = "2026.12.1"


@pytest.fixture
def ingest(live_server):
    # Addressed by the live server's own host name, on another port: the browser would send the
    # app's cookies to it if the SDK asked for credentials.
    server = Ingest(dsn_host=urlsplit(live_server.url).hostname)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser_dsn(settings, ingest):
    """SENTRY_BROWSER_DSN set to the local ingest, and the CSP the settings derive from it."""
    settings.SENTRY_BROWSER_DSN = ingest.dsn
    settings.SENTRY_ENVIRONMENT = "production"
    settings.APP_VERSION = RELEASE
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**directives, "connect-src": ["'self'", browser_ingest_origin(ingest.dsn)]}
    }
    return ingest


class Watched:
    """A page with everything it logs, throws and requests recorded from the first request on."""

    def __init__(self, page):
        self.page = page
        self.csp_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.csp_errors.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))

    def log_in(self, base_url, email):
        self.page.goto(f"{base_url}/accounts/login/")
        self.page.fill("#id_email", email)
        self.page.fill("#id_password", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.page.context.cookies()}


def _sent(ingest, watched, action):
    """Run `action`, which throws in the page; wait for the error and for the ingest's answer."""
    page = watched.page
    with (
        page.expect_event("pageerror"),
        page.expect_response(lambda r: r.url.startswith(ingest.origin)) as response,
    ):
        action()
    assert response.value.status == 200
    return ingest.events()


def _assert_nothing_private_left(ingest, watched, user, *secrets):
    cookies = watched.cookies()
    assert {"sessionid", "csrftoken"} <= cookies.keys()
    raw = b"".join(r.body + r.path.encode() for r in ingest.requests).decode()
    for secret in (*secrets, user.email, user.name, *cookies.values()):
        assert secret not in raw
    for received in ingest.requests:
        assert "cookie" not in {name.lower() for name in received.headers}
    # Errors only: no session, replay, transaction or any other kind of item.
    assert set(ingest.item_types()) <= {"event", "client_report"}


def test_an_error_on_the_dashboard_reaches_sentry_tagged_and_without_private_data(
    live_server, new_page, founder, browser_dsn, settings
):
    from playwright.sync_api import expect

    ingest = browser_dsn
    settings.ACTIVITY_POLL_SECONDS = 3600  # no poll adds a breadcrumb while the test runs
    watched = Watched(new_page())
    page = watched.page
    watched.log_in(live_server.url, founder.email)
    response = page.goto(f"{live_server.url}/dashboard/activity?ref=Qx7QueryValue#Fx7Frag")
    request_id = response.headers["x-request-id"]
    expect(page.locator("#feed > li.entry")).to_have_count(1)  # the feed has loaded
    expect(page.locator("#stat-total")).to_have_text("1")
    page.click("button[data-view=errors]")
    expect(page.locator("#feed-empty")).to_be_visible()

    events = _sent(
        ingest,
        watched,
        lambda: page.evaluate(
            "() => { setTimeout(() => { throw new Error('dashboard exploded'); }, 0); }"
        ),
    )

    assert len(events) == 1
    event = events[0]
    assert [(e["type"], e["value"]) for e in event["exception"]["values"]] == [
        ("Error", "dashboard exploded")
    ]
    assert event["environment"] == "production"
    assert event["release"] == RELEASE
    assert event["tags"] == {"request_id": request_id}
    assert event["user"] == {"id": str(founder.pk), "role": "FOUNDER"}
    assert event["request"] == {
        "url": f"{live_server.url}/dashboard/activity",
        "headers": {"User-Agent": page.evaluate("navigator.userAgent")},
    }
    assert "extra" not in event
    assert event["sdk"]["settings"] == {"infer_ip": "never"}  # Sentry stores no IP address
    # The feed (?limit=50), the stats (?type=stats), the errors view's address (?type=errors)
    # and its feed (?type=errors&limit=50): paths only. The click itself left no breadcrumb.
    fetch = ("fetch", {"method": "GET", "status_code": 200, "url": "/api/system/audit-logs"})
    view = ("navigation", {"from": "/dashboard/activity", "to": "/dashboard/activity"})
    assert [(c["category"], c.get("data")) for c in event["breadcrumbs"]] == [
        fetch,
        fetch,
        view,
        fetch,
    ]
    _assert_nothing_private_left(ingest, watched, founder, "Qx7QueryValue", "Fx7Frag")
    assert watched.page_errors == ["dashboard exploded"]
    assert watched.csp_errors == []


def test_a_dashboard_failure_the_script_catches_is_shown_and_reaches_sentry(
    live_server, new_page, founder, browser_dsn, settings
):
    from playwright.sync_api import expect

    ingest = browser_dsn
    settings.ACTIVITY_POLL_SECONDS = 3600  # one refresh: the first load
    watched = Watched(new_page())
    page = watched.page
    # A statistics answer the script cannot draw: it fails inside its own promise chain, where
    # no global handler sees it; the script must report it itself.
    page.route(
        lambda address: "type=stats" in address,
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps({"stats": {}})
        ),
        times=1,
    )
    watched.log_in(live_server.url, founder.email)
    with page.expect_response(lambda r: r.url.startswith(ingest.origin)) as sent:
        response = page.goto(f"{live_server.url}/dashboard/activity")
    assert sent.value.status == 200

    events = ingest.events()
    assert len(events) == 1
    [exception] = events[0]["exception"]["values"]
    assert exception["type"] == "TypeError"
    assert events[0]["tags"] == {"request_id": response.headers["x-request-id"]}
    assert events[0]["user"] == {"id": str(founder.pk), "role": "FOUNDER"}
    status = page.locator("#status")
    expect(status).to_have_text(exception["value"] + " Retrying.")  # the same failure, shown
    expect(status).to_have_class("status error")
    expect(page.locator("#activity")).to_have_attribute("data-state", "error")
    expect(page.locator("#feed > li.entry")).to_have_count(1)  # the feed itself did arrive
    _assert_nothing_private_left(ingest, watched, founder)
    assert watched.page_errors == []  # reported, not thrown at the page
    assert watched.csp_errors == []


def test_an_error_on_a_staff_form_keeps_typed_values_search_terms_and_page_text_out(
    live_server, new_page, marketing, browser_dsn
):
    ingest = browser_dsn
    make_lead(name="Priya Kx5 Raman", email="priya.kx5@example.com")
    watched = Watched(new_page())
    page = watched.page
    watched.log_in(live_server.url, marketing.email)
    page.goto(f"{live_server.url}/leads/?q=Kx5")
    with page.expect_navigation():
        page.click("a.button[href='/leads/new/']")
    request_id = page.evaluate(
        "JSON.parse(document.getElementById('sentry-browser-config').textContent).requestId"
    )
    # A form script that fails when a field changes: the SDK hands the failing listener's
    # arguments (the change event, whose target holds the value) to the event.
    page.evaluate(
        """() => document.getElementById("id_name").addEventListener("change", () => {
            throw new TypeError("lead form exploded");
        })"""
    )
    page.click("#id_name")
    page.keyboard.type("Zq8 Typed Lead Name")

    events = _sent(ingest, watched, lambda: page.keyboard.press("Tab"))

    assert len(events) == 1
    event = events[0]
    assert [(e["type"], e["value"]) for e in event["exception"]["values"]] == [
        ("TypeError", "lead form exploded")
    ]
    assert event["tags"] == {"request_id": request_id}
    assert event["user"] == {"id": str(marketing.pk), "role": "MARKETING"}
    assert event["environment"] == "production"
    assert event["release"] == RELEASE
    assert event["request"]["url"] == f"{live_server.url}/leads/new/"
    # The page came from the search: the referrer is kept, its query is not.
    assert event["request"]["headers"]["Referer"] == f"{live_server.url}/leads/"
    assert "extra" not in event
    # The click into the field and the typing left no breadcrumb.
    assert "breadcrumbs" not in event
    _assert_nothing_private_left(
        ingest, watched, marketing, "Zq8", "Typed Lead Name", "Kx5", "priya"
    )
    assert watched.page_errors == ["lead form exploded"]
    assert watched.csp_errors == []


def test_without_a_browser_dsn_no_sdk_is_loaded_and_nothing_is_sent(
    live_server, new_page, founder, settings, ingest
):
    from playwright.sync_api import expect

    settings.SENTRY_ENVIRONMENT = "production"
    settings.SENTRY_BROWSER_DSN = ""  # the default; SENTRY_DSN alone never reaches the pages
    settings.SENTRY_DSN = ingest.dsn
    watched = Watched(new_page())
    watched.log_in(live_server.url, founder.email)
    watched.page.goto(f"{live_server.url}/dashboard/activity")
    expect(watched.page.locator("#feed > li.entry")).to_have_count(1)

    with watched.page.expect_event("pageerror"):
        watched.page.evaluate(
            "() => { setTimeout(() => { throw new Error('nobody hears this'); }, 0); }"
        )

    assert watched.page_errors == ["nobody hears this"]
    assert watched.page.evaluate("typeof window.Sentry") == "undefined"
    assert watched.page.locator("#sentry-browser-config").count() == 0
    assert not [url for url in watched.requests if "sentry" in url]
    assert all(url.startswith(live_server.url) for url in watched.requests)
    assert ingest.requests == []
    assert watched.csp_errors == []
