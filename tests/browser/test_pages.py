"""The staff pages in a real browser, as marketing, founder and teacher: the work queue, the lists,
managing users, the error pages; the layout at 1280 px and 390 px (no sideways scrolling of the
page) and accessibility (axe-core: no serious or critical violation).

Screenshots of every page at both widths go to $BROWSER_SCREENSHOTS when it is set (to look
at), else to the test's temporary directory.
"""

from __future__ import annotations

import datetime
import json
import re
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from accounts.models import ApiToken, Role, User
from alerts.models import AlertState, AlertStatus
from audit.models import AuditLog
from core.timefmt import school_today
from invoices.models import Invoice
from payments.services import pay_and_convert
from tests.conftest import PASSWORD
from tests.factories import make_lead, make_token, make_user
from tests.money_factories import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WIDTHS = {"desktop": 1280, "phone": 390}


def _log_in(page, base_url, email, next_path="/", password=PASSWORD):
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def _serious_violations(page) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, so the page's CSP does not apply to it.
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def _overflow(page) -> tuple[int, int]:
    return tuple(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))


def _check_page(page, shots, name):
    """No sideways scrolling of the page, nothing axe calls serious, no CSP refusal."""
    scroll_width, inner_width = _overflow(page)
    shots(page, name)
    assert scroll_width <= inner_width, f"{name}: page is {scroll_width}px wide in {inner_width}px"
    assert _serious_violations(page) == [], name
    assert page.csp_errors == [], name


def _api(base_url, path, token):
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        f"{base_url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


# --- data a school would have --------------------------------------------------------------------


def _school(marketing):
    today = school_today()
    make_lead(name="Sneha Pillai", follow_up_date=today - datetime.timedelta(days=2))
    make_lead(name="Joel Thomas", follow_up_date=today, status="CONTACTED")
    make_lead(name="Later Lead", follow_up_date=today + datetime.timedelta(days=3))
    make_lead(
        name="Parvathy Sreekumaran Nair Thiruvananthapuram",  # a long name on a phone
        email="parvathy.sreekumaran.nair.thiruvananthapuram@example.com",
        quality="HOT",
        interested_level="A1_HYBRID_MALAYALAM",
    )
    late = make_invoice(actor=marketing, lead=make_lead(name="Fathima Rahman"))
    Invoice.objects.filter(pk=late.pk).update(
        status="SENT",
        issue_date=today - datetime.timedelta(days=10),
        due_date=today - datetime.timedelta(days=3),
    )
    make_invoice(
        actor=marketing, lead=make_lead(name="Vishnu Menon"), currency="INR", amounts=("14000.00",)
    )
    paid = make_invoice(actor=marketing, lead=make_lead(name="Arjun Nair"))
    pay_and_convert(
        invoice=paid,
        amount=Decimal("100.00"),
        method="UPI",
        idempotency_key=f"browser-{uuid.uuid4()}",
        actor=marketing,
    )
    return {"late": Invoice.objects.get(pk=late.pk), "paid": paid}


# --- marketing: the work queue and the lists -----------------------------------------------------


def test_marketing_works_through_the_queue_and_the_lists_keep_their_filters(
    live_server, sized_page, marketing, shots, monkeypatch
):
    from playwright.sync_api import expect

    data = _school(marketing)
    page = sized_page()
    _log_in(page, live_server.url, marketing.email)

    assert page.url == f"{live_server.url}/"
    follow_ups = page.locator("#follow-ups")
    expect(follow_ups.locator("h2 .count")).to_have_text("2")
    expect(follow_ups.locator("li")).to_have_count(2)
    expect(follow_ups.locator("li").nth(0)).to_contain_text("Sneha Pillai")
    expect(follow_ups.locator("li").nth(0)).to_contain_text("2 days overdue · New")
    expect(follow_ups.locator("li").nth(1)).to_contain_text("due today · Contacted")
    past_due = page.locator("#past-due")
    expect(past_due.locator("h2 .count")).to_have_text("1")
    expect(past_due.locator("li")).to_contain_text(data["late"].number)
    expect(past_due.locator("li")).to_contain_text("3 days ago")
    payments = page.locator("#payments-today")
    expect(payments.locator("h2 .count")).to_have_text("1")
    expect(payments).to_contain_text("€100.00 in 1 payment")
    expect(payments.locator("li")).to_contain_text(re.compile(r"UPI · \d\d:\d\d IST"))
    assert page.locator("#alerts").count() == 0 and page.locator("#health").count() == 0
    shots(page, "marketing-home")

    follow_ups.get_by_role("link", name="Sneha Pillai").click()
    expect(page.locator("h1")).to_have_text("Sneha Pillai")
    page.go_back()
    follow_ups.get_by_role("link", name=re.compile("See them in the lead list")).click()
    expect(page.locator("#lead-list tbody tr")).to_have_count(2)
    assert page.url.endswith("/leads/?follow_up=due&sort=follow_up")
    expect(page.locator("#id_follow_up")).to_have_value("due")
    expect(page.locator("#list-count")).to_have_text("2 leads match the filters")

    page.get_by_role("link", name="Name", exact=True).click()
    expect(page.locator("#lead-list tbody tr td[data-label=Name]")).to_have_text(
        ["Joel Thomas", "Sneha Pillai"]
    )
    assert "follow_up=due" in page.url and "sort=name" in page.url
    page.reload()  # the address is the list: a reload (or a bookmark) shows it again
    expect(page.locator("#lead-list tbody tr td[data-label=Name]")).to_have_text(
        ["Joel Thomas", "Sneha Pillai"]
    )
    expect(page.locator("#id_sort")).to_have_value("name")
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Name")

    # Paging both ways, with the filters kept: two leads a page.
    monkeypatch.setattr("core.listing.PAGE_SIZE", 2)
    page.goto(f"{live_server.url}/leads/?converted=false&sort=-name")
    names = page.locator("#lead-list tbody td[data-label=Name]")
    expect(names).to_have_text(["Vishnu Menon", "Sneha Pillai"])
    page.get_by_role("link", name="Next →").click()
    expect(names).to_have_text(["Parvathy Sreekumaran Nair Thiruvananthapuram", "Later Lead"])
    assert "converted=false" in page.url and "sort=-name" in page.url and "page=2" in page.url
    page.get_by_role("link", name="Next →").click()
    expect(names).to_have_text(["Joel Thomas", "Fathima Rahman"])
    page.get_by_role("link", name="← Previous").click()
    expect(names).to_have_text(["Parvathy Sreekumaran Nair Thiruvananthapuram", "Later Lead"])
    expect(page.locator("#id_converted")).to_have_value("false")

    # Filters are sent with the form and come back in the address.
    page.goto(f"{live_server.url}/invoices/")
    page.select_option("#id_currency", "INR")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert page.url.endswith("/invoices/?q=&status=&currency=INR&sort=-issued")
    expect(page.locator("#invoice-list tbody td[data-label=Lead]")).to_have_text(["Vishnu Menon"])
    assert page.csp_errors == []


# --- founder: the queue's extra sections and managing users ---------------------------------------


def test_founder_sees_alerts_and_health_and_manages_a_user_end_to_end(
    live_server, sized_page, founder, shots
):
    from playwright.sync_api import expect

    AlertState.objects.create(
        fingerprint="error_rate",
        rule="error_rate",
        state=AlertStatus.FIRING,
        summary="Error rate 30.0% over the last hour",
        firing_since=datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(minutes=5),
    )
    page = sized_page()
    page.on("dialog", lambda dialog: dialog.accept())
    _log_in(page, live_server.url, founder.email)

    expect(page.locator("#alerts h2 .count")).to_have_text("1")
    expect(page.locator("#alerts li")).to_contain_text("Error rate 30.0% over the last hour")
    expect(page.locator("#health .status-pill")).to_have_text(re.compile("Healthy|Degraded"))
    shots(page, "founder-home")

    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="New user").click()
    page.fill("#id_email", "anna@planbeta.example")
    page.fill("#id_name", "Anna K")
    page.select_option("#id_role", "MARKETING")
    page.get_by_label("Generate one and show it to me once").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Create user").click()
    expect(page.locator("h1")).to_have_text("Anna K can log in")
    password = page.locator("#secret").inner_text()
    shots(page, "founder-user-created")
    page.get_by_role("link", name="Done: I have copied it").click()
    expect(page.locator("h1")).to_contain_text("Anna K")
    assert password not in page.content()

    anna_page = sized_page()
    _log_in(anna_page, live_server.url, "anna@planbeta.example", password=password)
    expect(anna_page.locator("h1")).to_contain_text("Today")  # the marketing work queue

    page.select_option("#edit_role", "TEACHER")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_have_text("Saved.")
    expect(page.locator("dl.facts")).to_contain_text("Teacher")

    page.fill("#token_name", "sheet sync")
    with page.expect_navigation():
        page.get_by_role("button", name="Issue token").click()
    token = page.locator("#secret").inner_text()
    assert token.startswith("pb_")
    status, body = _api(live_server.url, "/api/me", token)
    assert (status, body["email"]) == (200, "anna@planbeta.example")
    page.get_by_role("link", name="Done: I have copied it").click()
    expect(page.locator("#token-list")).to_contain_text(token[:10] + "…")
    assert token not in page.content()
    shots(page, "founder-user-detail")

    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("^Revoke")).click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    assert _api(live_server.url, "/api/me", token)[0] == 401

    with page.expect_navigation():
        page.get_by_role("button", name="Deactivate Anna K").click()
    expect(page.locator(".card-head .status-pill")).to_have_text("Deactivated")
    anna_page.reload()
    assert "/accounts/login/" in anna_page.url  # her session ended

    actions = list(
        AuditLog.objects.filter(entity_type="User", action__startswith="USER_").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["USER_CREATED", "USER_DEACTIVATED", "USER_UPDATED"]
    assert ApiToken.objects.get(user__email="anna@planbeta.example").revoked_at is not None
    assert page.csp_errors == []


def test_the_last_founder_is_told_why_they_cannot_step_down(live_server, sized_page, founder):
    from playwright.sync_api import expect

    page = sized_page()
    page.on("dialog", lambda dialog: dialog.accept())
    _log_in(page, live_server.url, founder.email, next_path=f"/accounts/users/{founder.pk}/")

    with page.expect_navigation():
        page.get_by_role("button", name="Deactivate Fiona Founder").click()

    expect(page.locator(".messages")).to_contain_text("This would leave no active founder")
    assert User.objects.get(pk=founder.pk).is_active


# --- teacher and anonymous visitors ------------------------------------------------------------


def test_a_teacher_is_told_what_they_can_do_and_why_money_pages_are_closed(
    live_server, sized_page, teacher, founder, shots
):
    from playwright.sync_api import expect

    page = sized_page()
    _log_in(page, live_server.url, teacher.email, next_path="/leads/")

    expect(page.locator("h1")).to_have_text("This page is not for your account")
    expect(page.locator("main")).to_contain_text(
        "Leads and money are for founders and marketing staff."
    )
    shots(page, "teacher-403")
    page.get_by_role("link", name="Go to your home page").click()
    expect(page.locator("h1")).to_have_text("Welcome, Tara")
    expect(page.locator("main")).to_contain_text("Fiona Founder")
    expect(page.locator("nav[aria-label=Main] a")).to_have_text(["Home"])
    page.get_by_role("link", name="Change your password").click()
    page.fill("#id_old_password", PASSWORD)
    page.fill("#id_new_password1", "plum-orchard-lantern-42")
    page.fill("#id_new_password2", "plum-orchard-lantern-42")
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()
    expect(page.locator(".messages")).to_have_text("Your password has been changed.")
    assert User.objects.get(pk=teacher.pk).check_password("plum-orchard-lantern-42")


def test_the_api_docs_send_an_anonymous_visitor_to_log_in_and_back(
    live_server, sized_page, marketing
):
    from playwright.sync_api import expect

    page = sized_page()
    page.goto(f"{live_server.url}/api/docs")

    assert page.url == f"{live_server.url}/accounts/login/?next=/api/docs"
    page.fill("#id_email", marketing.email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{live_server.url}/api/docs"
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Plan Beta back office API")


@pytest.mark.urls("tests.audit.urls_failing")
def test_the_error_pages_say_what_happened_and_where_to_go(
    live_server, sized_page, marketing, shots
):
    from playwright.sync_api import expect

    page = sized_page()
    _log_in(page, live_server.url, marketing.email)

    response = page.goto(f"{live_server.url}/leads/999999/")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("There is nothing at this address")
    _check_page(page, shots, "marketing-404")

    response = page.goto(f"{live_server.url}/test/explode")
    assert response.status == 500
    expect(page.locator("h1")).to_have_text("Something went wrong on our side")
    expect(page.locator("main code")).to_have_text(response.headers["x-request-id"])
    _check_page(page, shots, "marketing-500")
    page.get_by_role("link", name="Go to the home page").click()
    expect(page.locator("h1")).to_contain_text("Today")


# --- phone: the compact menu and the keyboard ----------------------------------------------------


def test_on_a_phone_the_menu_opens_and_closes_from_its_button_and_the_keyboard(
    live_server, sized_page, founder, shots
):
    from playwright.sync_api import expect

    page = sized_page(WIDTHS["phone"])
    _log_in(page, live_server.url, founder.email)
    menu = page.locator("#site-menu")
    toggle = page.get_by_role("button", name="Menu")

    expect(menu).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(menu).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    shots(page, "founder-phone-menu-open")
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(toggle).to_be_focused()

    # The first Tab reaches the skip link, which takes the keyboard past the menu.
    page.goto(f"{live_server.url}/leads/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    desktop = sized_page(WIDTHS["desktop"])
    _log_in(desktop, live_server.url, founder.email)
    expect(desktop.locator("#site-menu")).to_be_visible()
    expect(desktop.get_by_role("button", name="Menu")).to_be_hidden()


# --- every main page, each role, both widths: no sideways scroll, axe clean ----------------------

PAGES = {
    "anonymous": ["/accounts/login/"],
    "teacher": ["/", "/accounts/password/", "/leads/"],
    "marketing": [
        "/",
        "/leads/",
        "/leads/?status=NOPE",
        "/leads/new/",
        "/leads/{lead}/",
        "/invoices/",
        "/payments/students/",
        "/accounts/password/",
    ],
    "founder": [
        "/",
        "/leads/",
        "/leads/{lead}/",
        "/invoices/?sort=-amount",
        "/payments/students/",
        "/accounts/users/",
        "/accounts/users/new/",
        "/accounts/users/{user}/",
        "/status",
    ],
}


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("who", ["anonymous", "teacher", "marketing", "founder"])
def test_main_pages_fit_the_screen_and_have_no_serious_accessibility_problem(
    live_server, sized_page, request, who, width, shots, marketing
):
    data = _school(marketing)
    user = make_user(
        email="ravi.long-address@planbeta.example", name="Ravi Shankar", role=Role.TEACHER
    )
    make_token(user)
    ids = {"lead": data["paid"].lead_id, "user": user.pk}
    page = sized_page(WIDTHS[width])
    if who != "anonymous":
        _log_in(page, live_server.url, request.getfixturevalue(who).email)

    for path in PAGES[who]:
        page.goto(live_server.url + path.format(**ids))
        name = re.sub(r"[^a-z0-9]+", "-", path.split("{")[0].lower()).strip("-") or "home"
        _check_page(page, shots, f"{who}-{width}-{name}")


def test_the_accessibility_check_finds_a_field_without_a_label(live_server, sized_page, marketing):
    page = sized_page()
    _log_in(page, live_server.url, marketing.email, next_path="/leads/new/")
    assert _serious_violations(page) == []

    page.evaluate("document.querySelector('label[for=id_name]').remove()")

    assert [v["id"] for v in _serious_violations(page)] == ["label"]
