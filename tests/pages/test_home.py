"""The home page is each person's work queue for the day (India time)."""

import datetime
import re
import uuid
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from alerts.models import AlertState, AlertStatus
from invoices.services import invoice_send
from monitoring.checks import collect_health
from payments.services import pay_and_convert
from tests.factories import make_lead, make_user
from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db

IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
# 10:00 on 1 Dec 2026 in India.
NOW = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=IST)
TODAY = NOW.date()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _section(html, section_id):
    match = re.search(rf'<section class="card" id="{section_id}".*?</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def _count(section):
    return int(re.search(r'<span class="count[^"]*">(\d+)</span>', section).group(1))


def _days_ago(days):
    return TODAY - datetime.timedelta(days=days)


def _sent_invoice_due(marketing, clock, *, due, mailoutbox):
    """An invoice issued a week before `due` and e-mailed then, as staff would have done."""
    clock.move_to(
        datetime.datetime.combine(due, datetime.time(11), tzinfo=IST) - datetime.timedelta(days=7)
    )
    invoice = make_invoice(actor=marketing)
    invoice_send(invoice=invoice, actor=marketing)
    clock.move_to(NOW)
    return invoice


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = Client().get("/")

    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/")


def test_follow_ups_due_today_and_overdue_are_listed_oldest_first(clock, marketing):
    overdue = make_lead(name="Sneha Pillai", follow_up_date=_days_ago(3), status="CONTACTED")
    today = make_lead(name="Joel Thomas", follow_up_date=TODAY)
    make_lead(name="Later Lead", follow_up_date=TODAY + datetime.timedelta(days=1))
    make_lead(name="Lost Lead", follow_up_date=_days_ago(1), status="LOST")
    make_lead(name="No Date Lead")

    section = _section(_client(marketing).get("/").content.decode(), "follow-ups")

    assert _count(section) == 2
    names = re.findall(r'<a href="/leads/(\d+)/">([^<]+)</a>', section)
    assert names == [(str(overdue.pk), "Sneha Pillai"), (str(today.pk), "Joel Thomas")]
    assert "3 days overdue · Contacted" in section
    assert "due today · New" in section
    assert 'href="/leads/?follow_up=due&amp;sort=follow_up"' in section


def test_a_lead_that_became_a_student_needs_no_follow_up(clock, marketing):
    lead = make_lead(name="Arjun Nair", follow_up_date=_days_ago(2))
    invoice = make_invoice(actor=marketing, lead=lead)
    pay_and_convert(
        invoice=invoice, amount=Decimal("50.00"), idempotency_key="home-k-1", actor=marketing
    )

    section = _section(_client(marketing).get("/").content.decode(), "follow-ups")

    assert _count(section) == 0
    assert "Nobody to follow up" in section


def test_the_follow_up_section_counts_all_and_shows_the_first_few(clock, marketing):
    for days in range(10):
        make_lead(name=f"Lead {days}", follow_up_date=_days_ago(days))

    section = _section(_client(marketing).get("/").content.decode(), "follow-ups")

    assert _count(section) == 10
    assert len(re.findall(r'<a href="/leads/\d+/">', section)) == 8
    assert "All 10 follow-ups due →" in section


def test_sent_invoices_past_their_due_date_are_listed(clock, marketing, mailoutbox):
    late = _sent_invoice_due(marketing, clock, due=_days_ago(3), mailoutbox=mailoutbox)
    _sent_invoice_due(marketing, clock, due=TODAY, mailoutbox=mailoutbox)  # due today: not late
    clock.move_to(NOW - datetime.timedelta(days=10))
    make_invoice(actor=marketing)  # a draft past due was never sent
    clock.move_to(NOW)

    section = _section(_client(marketing).get("/").content.decode(), "past-due")

    assert _count(section) == 1
    assert f'<a href="/invoices/{late.pk}/">{late.number}</a>' in section
    assert "due 28 Nov 2026, 3 days ago" in section
    assert 'href="/invoices/?overdue=on&amp;sort=due"' in section


def test_an_invoice_past_due_and_then_paid_leaves_the_queue(clock, marketing, mailoutbox):
    late = _sent_invoice_due(marketing, clock, due=_days_ago(3), mailoutbox=mailoutbox)
    pay_and_convert(
        invoice=late, amount=Decimal("134.00"), idempotency_key="home-k-2", actor=marketing
    )

    section = _section(_client(marketing).get("/").content.decode(), "past-due")

    assert _count(section) == 0
    assert "No sent invoice is waiting past its due date" in section


def _pay(clock, marketing, at, amount, currency="EUR", paid_on=None):
    clock.move_to(at)
    invoice = make_invoice(actor=marketing, currency=currency, amounts=("200.00",))
    pay_and_convert(
        invoice=invoice,
        amount=Decimal(amount),
        idempotency_key=f"home-{uuid.uuid4()}",
        actor=marketing,
        paid_on=paid_on,
    )
    return invoice


def test_todays_payments_are_those_since_midnight_india_time(clock, marketing):
    def pay(at, amount, currency="EUR"):
        return _pay(clock, marketing, at, amount, currency)

    pay(datetime.datetime(2026, 11, 30, 23, 50, tzinfo=IST), "10.00")  # yesterday in India
    first = pay(datetime.datetime(2026, 12, 1, 0, 10, tzinfo=IST), "20.00")
    second = pay(datetime.datetime(2026, 12, 1, 9, 5, tzinfo=IST), "30.00")
    pay(datetime.datetime(2026, 12, 1, 9, 30, tzinfo=IST), "40.00", currency="INR")
    clock.move_to(NOW)

    section = _section(_client(marketing).get("/").content.decode(), "payments-today")

    assert _count(section) == 3
    assert "<strong>€50.00</strong> in 2 payments · <strong>₹40.00</strong> in 1 payment" in section
    assert section.index(second.number) < section.index(first.number)  # latest first
    assert "€30.00 · Bank transfer · 09:05 IST" in section
    assert "€10.00" not in section


def test_todays_payments_are_those_received_today_not_those_entered_today(clock, marketing):
    # Entered this morning, received yesterday (a transfer seen in the bank statement today).
    _pay(clock, marketing, NOW - datetime.timedelta(hours=1), "70.00", paid_on=_days_ago(1))
    received = _pay(clock, marketing, NOW - datetime.timedelta(minutes=30), "15.00")
    clock.move_to(NOW)

    section = _section(_client(marketing).get("/").content.decode(), "payments-today")

    assert _count(section) == 1
    assert received.number in section
    assert "<strong>€15.00</strong> in 1 payment</p>" in section
    assert "€70.00" not in section


def test_no_payment_yet_today_says_so(clock, marketing):
    section = _section(_client(marketing).get("/").content.decode(), "payments-today")

    assert _count(section) == 0
    assert "No payment received today (1 Dec 2026, India time) has been recorded yet." in section


def test_marketing_sees_no_alerts_or_health(clock, marketing):
    html = _client(marketing).get("/").content.decode()

    assert 'id="alerts"' not in html and 'id="health"' not in html


def test_founders_see_open_alerts_and_the_health_status(clock, founder, settings):
    settings.FOUNDER_ALERT_EMAILS = ["founders@planbeta.example"]
    AlertState.objects.create(
        fingerprint="error_rate",
        rule="error_rate",
        state=AlertStatus.FIRING,
        summary="Error rate 30.0% over the last hour",
        firing_since=NOW - datetime.timedelta(minutes=20),
    )
    AlertState.objects.create(fingerprint="no_activity", rule="no_activity")  # normal

    html = _client(founder).get("/").content.decode()

    alerts = _section(html, "alerts")
    assert _count(alerts) == 1
    assert "Error rate 30.0% over the last hour" in alerts
    assert "since 1 Dec 2026, 09:40 IST" in alerts
    health = _section(html, "health")
    assert '<span class="status-pill good">Healthy</span>' in health
    assert "Every check passes" in health


def test_founders_see_which_checks_are_not_healthy(clock, founder, settings):
    settings.FOUNDER_ALERT_EMAILS = ["founders@planbeta.example"]
    settings.HEALTH_EXPECT_HEARTBEAT = True  # and no worker has beaten

    health = _section(_client(founder).get("/").content.decode(), "health")

    assert '<span class="status-pill warn">Degraded</span>' in health
    assert re.findall(r"<li><strong>([^<]+)</strong>", health) == ["Workers and beat"]
    assert "<strong>Workers and beat</strong>: degraded — No worker heartbeat recorded" in health


def test_no_alert_firing_says_what_that_means(clock, founder):
    alerts = _section(_client(founder).get("/").content.decode(), "alerts")

    assert _count(alerts) == 0
    assert "No alert is firing" in alerts


def test_the_teacher_home_says_what_a_teacher_can_do_and_whom_to_ask(founder, teacher):
    make_user(role="FOUNDER", name="Gone Founder", is_active=False)

    response = _client(teacher).get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Welcome, Tara</h1>" in html
    assert 'href="/accounts/password/">Change your password</a>' in html
    assert 'Fiona Founder — <a href="mailto:founder@example.com">' in html
    assert "Gone Founder" not in html
    assert 'href="/leads/"' not in html and 'id="follow-ups"' not in html


def test_the_money_staff_home_costs_a_fixed_number_of_queries(
    clock, marketing, django_assert_num_queries, mailoutbox
):
    client = _client(marketing)
    for days in range(3):
        make_lead(follow_up_date=_days_ago(days))
    _sent_invoice_due(marketing, clock, due=_days_ago(2), mailoutbox=mailoutbox)
    client.get("/")

    # session, user, follow-ups, invoices past due, today's payments (no totals: none today)
    with django_assert_num_queries(5):
        client.get("/")
    for days in range(5):
        make_lead(follow_up_date=_days_ago(days))
    invoice = make_invoice(actor=marketing)
    pay_and_convert(
        invoice=invoice, amount=Decimal("5.00"), idempotency_key="home-k-3", actor=marketing
    )
    # ... and the day's totals once there are payments, however many rows each section has.
    with django_assert_num_queries(6):
        client.get("/")


def test_the_founder_home_adds_one_query_for_alerts_and_reads_health_from_its_cache(
    clock, founder, django_assert_num_queries
):
    client = _client(founder)
    collect_health(detailed=True)  # the report the uptime monitor also reads, cached

    with django_assert_num_queries(6):
        client.get("/")


@pytest.mark.parametrize("persona", ["teacher", "marketing", "founder"])
def test_every_role_has_a_home_page_that_greets_them(request, persona):
    user = request.getfixturevalue(persona)

    response = _client(user).get("/")

    assert response.status_code == 200
    assert user.name.split()[0] in response.content.decode()


def test_the_teacher_home_says_money_and_monitoring_are_not_for_their_role(teacher):
    html = _client(teacher).get("/").content.decode()

    assert (
        "Leads, invoices, payments, students and the monitoring pages are for founders and "
        "marketing staff" in html
    )
