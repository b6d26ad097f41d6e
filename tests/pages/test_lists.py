"""The staff lists: a count, sorting by the obvious columns, pages both ways, and filters kept
in the address (so a bookmark or a reload shows the same list)."""

import datetime
import html as html_lib
import re
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import Role
from invoices.models import Invoice
from payments.services import pay_and_convert
from tests.factories import make_lead, make_user
from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


@pytest.fixture
def founder_web(founder):
    client = Client()
    client.force_login(founder)
    return client


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr("core.listing.PAGE_SIZE", 2)


def _names(html, table_id, cell="Name"):
    table = re.search(rf'<table class="list" id="{table_id}">.*?</table>', html, re.S).group(0)
    return [
        html_lib.unescape(re.sub(r"<[^>]+>", "", value)).strip()
        for value in re.findall(rf'<td data-label="{cell}">(.*?)</td>', table, re.S)
    ]


def _links(html):
    return {
        rel: html_lib.unescape(href)
        for href, rel in re.findall(r'<a href="([^"]+)" rel="(prev|next)">', html)
    }


def _count(html):
    return re.search(r'<p class="muted" id="list-count"><strong>([\d,]+)</strong>', html).group(1)


# --- leads ------------------------------------------------------------------------------------


def test_the_lead_list_counts_the_matching_leads(staff):
    for name in ("Anu", "Bala", "Chitra"):
        make_lead(name=name, status="NEW")
    make_lead(name="Dev", status="LOST")

    everything = staff.get("/leads/").content.decode()
    new_only = staff.get("/leads/?status=NEW").content.decode()

    assert _count(everything) == "4" and "4</strong> leads" in everything
    assert _count(new_only) == "3" and "3</strong> leads match the filters" in new_only


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Anu", "Bala", "Chitra"]),
        ("-name", ["Chitra", "Bala", "Anu"]),
        ("created", ["Bala", "Chitra", "Anu"]),
        ("-created", ["Anu", "Chitra", "Bala"]),
        # Empty follow-up dates last, whichever way.
        ("follow_up", ["Chitra", "Anu", "Bala"]),
        ("-follow_up", ["Anu", "Chitra", "Bala"]),
        # The pipeline's order, not the alphabet's.
        ("status", ["Anu", "Chitra", "Bala"]),
        ("-status", ["Bala", "Chitra", "Anu"]),
    ],
)
def test_the_lead_list_sorts_by_each_column_both_ways(staff, sort, expected):
    make_lead(name="Bala", status="LOST")
    make_lead(name="Chitra", status="CONTACTED", follow_up_date=datetime.date(2026, 12, 1))
    make_lead(name="Anu", status="NEW", follow_up_date=datetime.date(2026, 12, 9))

    html = staff.get(f"/leads/?sort={sort}").content.decode()

    assert _names(html, "lead-list") == expected


def test_the_sorted_column_says_so_and_its_header_turns_the_sort_round(staff):
    make_lead(name="Anu")

    html = staff.get("/leads/?sort=name&status=NEW").content.decode()

    assert (
        '<th scope="col" aria-sort="ascending"><a href="?sort=-name&amp;status=NEW">Name</a>'
        in html
    )
    assert '<option value="name" selected>Name, A to Z</option>' in html


def test_pages_go_both_ways_and_keep_the_filters_and_the_sort(staff, small_pages):
    for name in ("Anu", "Bala", "Chitra", "Dev", "Esha"):
        make_lead(name=name, status="NEW")
    make_lead(name="Fathima", status="LOST")

    first = staff.get("/leads/?status=NEW&sort=name").content.decode()
    second = staff.get(_links(first)["next"].replace("?", "/leads/?", 1)).content.decode()
    third = staff.get("/leads/" + _links(second)["next"]).content.decode()
    back = staff.get("/leads/" + _links(third)["prev"]).content.decode()

    assert _names(first, "lead-list") == ["Anu", "Bala"]
    assert _links(first) == {"next": "?status=NEW&sort=name&page=2"}
    assert _names(second, "lead-list") == ["Chitra", "Dev"]
    assert _links(second) == {
        "prev": "?status=NEW&sort=name&page=1",
        "next": "?status=NEW&sort=name&page=3",
    }
    assert _names(third, "lead-list") == ["Esha"]
    assert "next" not in _links(third)
    assert "Showing 5\u20135 of 5" in third and "page 3 of 3" in third
    assert _names(back, "lead-list") == ["Chitra", "Dev"]


def test_a_bookmarked_page_past_the_end_says_where_the_list_ends(
    staff, small_pages, django_assert_num_queries
):
    make_lead(name="Anu")

    with django_assert_num_queries(3):  # session, user, the count: no page to read
        response = staff.get("/leads/?page=5")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Page 5 is past the end of the list" in html
    assert _links(html) == {"prev": "?page=1"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=phone", "Sort by one of: name, status, follow_up, created."),
        ("page=0", "Pages are numbered 1 to 200"),
        ("page=201", "Pages are numbered 1 to 200"),
        ("page=two", "Pages are numbered 1 to 200"),
        ("status=WON", "Some filters are not valid"),
        ("q=" + "x" * 101, "Some filters are not valid"),
        ("q=a%00b", "Some filters are not valid"),
    ],
)
def test_a_list_asked_for_what_it_cannot_serve_answers_400_and_lists_nothing(staff, query, message):
    make_lead(name="Anu")

    response = staff.get(f"/leads/?{query}")

    html = response.content.decode()
    assert response.status_code == 400
    assert message in html
    assert 'id="lead-list"' not in html and "Anu" not in html


def test_the_follow_up_filter_keeps_the_open_leads_due_today_or_earlier(staff):
    from core.timefmt import school_today

    today = school_today()
    make_lead(name="Due", follow_up_date=today)
    make_lead(name="Overdue", follow_up_date=today - datetime.timedelta(days=4))
    make_lead(name="Later", follow_up_date=today + datetime.timedelta(days=1))
    make_lead(name="Lost", follow_up_date=today, status="LOST")

    html = staff.get("/leads/?follow_up=due&sort=follow_up").content.decode()

    assert _names(html, "lead-list") == ["Overdue", "Due"]


def test_the_lead_list_costs_the_same_queries_for_one_lead_or_many(
    staff, marketing, django_assert_num_queries
):
    make_lead()
    converted = make_invoice(actor=marketing)
    pay_and_convert(
        invoice=converted, amount=Decimal("5.00"), idempotency_key="lists-k-1", actor=marketing
    )
    staff.get("/leads/")
    # session, user, the count, the page of leads (each converted lead's student joined)
    with django_assert_num_queries(4):
        staff.get("/leads/?sort=name")
    for _ in range(20):
        make_lead()
    with django_assert_num_queries(4):
        staff.get("/leads/?sort=name")


# --- invoices ---------------------------------------------------------------------------------


def _invoice(marketing, name, amount, currency="EUR"):
    return make_invoice(
        actor=marketing, lead=make_lead(name=name), amounts=(amount,), currency=currency
    )


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("number", ["Anu", "Bala", "Chitra"]),
        ("-number", ["Chitra", "Bala", "Anu"]),
        ("lead", ["Anu", "Bala", "Chitra"]),
        ("-lead", ["Chitra", "Bala", "Anu"]),
        # Within a currency: EUR ones, then INR.
        ("amount", ["Bala", "Anu", "Chitra"]),
        ("-amount", ["Chitra", "Anu", "Bala"]),
        ("due", ["Bala", "Anu", "Chitra"]),
        ("-due", ["Chitra", "Anu", "Bala"]),
        ("status", ["Anu", "Chitra", "Bala"]),
        ("-status", ["Bala", "Chitra", "Anu"]),
        ("issued", ["Anu", "Bala", "Chitra"]),
        ("-issued", ["Chitra", "Bala", "Anu"]),
    ],
)
def test_the_invoice_list_sorts_by_each_column_both_ways(staff, marketing, sort, expected):
    from invoices.services import invoice_cancel, invoice_update

    anu = _invoice(marketing, "Anu", "156.00")
    bala = _invoice(marketing, "Bala", "134.00")
    chitra = _invoice(marketing, "Chitra", "14000.00", currency="INR")
    invoice_update(invoice=bala, actor=marketing, due_date=datetime.date(2030, 1, 1))
    invoice_update(invoice=anu, actor=marketing, due_date=datetime.date(2030, 2, 1))
    invoice_update(invoice=chitra, actor=marketing, due_date=datetime.date(2030, 3, 1))
    invoice_cancel(invoice=bala, reason="duplicate", actor=marketing)
    pay_and_convert(
        invoice=chitra, amount=Decimal("100.00"), idempotency_key="lists-k-2", actor=marketing
    )

    html = staff.get(f"/invoices/?sort={sort}").content.decode()

    assert [name for name in _names(html, "invoice-list", cell="Lead")] == expected


def test_the_invoice_list_filters_by_status_currency_search_and_past_due(staff, marketing):
    _invoice(marketing, "Anu", "156.00")
    _invoice(marketing, "Bala", "14000.00", currency="INR")
    late = _invoice(marketing, "Chitra", "134.00")
    Invoice.objects.filter(pk=late.pk).update(
        status="SENT", due_date=datetime.date(2020, 1, 1), issue_date=datetime.date(2019, 12, 25)
    )

    def leads(query):
        return _names(staff.get(f"/invoices/?{query}").content.decode(), "invoice-list", "Lead")

    assert leads("currency=INR") == ["Bala"]
    assert leads("status=SENT") == ["Chitra"]
    assert leads("overdue=on") == ["Chitra"]
    assert leads(f"q={late.number}") == ["Chitra"]
    assert leads("q=anu") == ["Anu"]


def test_the_invoice_list_costs_the_same_queries_for_one_invoice_or_many(
    staff, marketing, django_assert_num_queries
):
    _invoice(marketing, "Anu", "156.00")
    staff.get("/invoices/")
    with django_assert_num_queries(4):
        staff.get("/invoices/?sort=amount")
    for i in range(10):
        _invoice(marketing, f"Lead {i}", "100.00")
    with django_assert_num_queries(4):
        staff.get("/invoices/?sort=amount")


# --- students ---------------------------------------------------------------------------------


def _student(marketing, name, paid="50.00"):
    invoice = make_invoice(actor=marketing, lead=make_lead(name=name), amounts=("100.00",))
    pay_and_convert(
        invoice=invoice,
        amount=Decimal(paid),
        idempotency_key=f"lists-{uuid.uuid4()}",
        actor=marketing,
    )
    return invoice


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Anu", "Bala", "Chitra"]),
        ("-name", ["Chitra", "Bala", "Anu"]),
        ("code", ["Bala", "Chitra", "Anu"]),
        ("-code", ["Anu", "Chitra", "Bala"]),
        ("created", ["Bala", "Chitra", "Anu"]),
        ("-created", ["Anu", "Chitra", "Bala"]),
        ("status", ["Bala", "Anu", "Chitra"]),
        ("-status", ["Chitra", "Anu", "Bala"]),
    ],
)
def test_the_student_list_sorts_by_each_column_both_ways(staff, marketing, sort, expected):
    _student(marketing, "Bala", paid="50.00")  # partial
    _student(marketing, "Chitra", paid="100.00")  # paid
    _student(marketing, "Anu", paid="30.00")  # partial

    html = staff.get(f"/payments/students/?sort={sort}").content.decode()

    assert _names(html, "student-list") == expected


def test_the_student_list_filters_by_payment_status_and_search(staff, marketing):
    _student(marketing, "Bala", paid="50.00")
    _student(marketing, "Chitra", paid="100.00")

    paid = staff.get("/payments/students/?payment_status=PAID").content.decode()
    search = staff.get("/payments/students/?q=bal").content.decode()

    assert _names(paid, "student-list") == ["Chitra"]
    assert _names(search, "student-list") == ["Bala"]


def test_the_student_list_costs_the_same_queries_for_one_student_or_many(
    staff, marketing, django_assert_num_queries
):
    _student(marketing, "Anu")
    staff.get("/payments/students/")
    with django_assert_num_queries(4):
        staff.get("/payments/students/")
    for i in range(5):
        _student(marketing, f"Lead {i}")
    with django_assert_num_queries(4):
        staff.get("/payments/students/")


# --- users ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Anu", "Bala", "Fiona Founder"]),
        ("-name", ["Fiona Founder", "Bala", "Anu"]),
        ("email", ["Bala", "Anu", "Fiona Founder"]),
        ("role", ["Fiona Founder", "Anu", "Bala"]),
        ("-role", ["Bala", "Anu", "Fiona Founder"]),
        ("created", ["Fiona Founder", "Bala", "Anu"]),
        ("-created", ["Anu", "Bala", "Fiona Founder"]),
    ],
)
def test_the_user_list_sorts_by_each_column_both_ways(founder_web, sort, expected):
    make_user(email="b-bala@example.com", name="Bala", role=Role.TEACHER)
    make_user(email="c-anu@example.com", name="Anu", role=Role.MARKETING)

    html = founder_web.get(f"/accounts/users/?sort={sort}").content.decode()

    assert [n.removesuffix(" (you)") for n in _names(html, "user-list")] == expected


def test_the_user_list_filters_by_role_status_and_search(founder_web):
    make_user(email="bala@example.com", name="Bala", role=Role.TEACHER)
    make_user(email="anu@example.com", name="Anu", role=Role.MARKETING, is_active=False)

    def names(query):
        html = founder_web.get(f"/accounts/users/?{query}").content.decode()
        return [n.removesuffix(" (you)") for n in _names(html, "user-list")]

    assert names("role=TEACHER") == ["Bala"]
    assert names("active=false") == ["Anu"]
    assert names("active=true") == ["Bala", "Fiona Founder"]
    assert names("q=anu@") == ["Anu"]


def test_the_user_list_costs_the_same_queries_for_few_users_or_many(
    founder_web, django_assert_num_queries
):
    founder_web.get("/accounts/users/")
    with django_assert_num_queries(4):
        founder_web.get("/accounts/users/")
    for i in range(10):
        make_user(name=f"User {i}")
    with django_assert_num_queries(4):
        founder_web.get("/accounts/users/")


# --- who may open them ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/leads/", ("marketing", "founder")),
        ("/invoices/", ("marketing", "founder")),
        ("/payments/students/", ("marketing", "founder")),
        ("/accounts/users/", ("founder",)),
    ],
)
@pytest.mark.parametrize("who", ["anonymous", "teacher", "marketing", "founder"])
def test_list_role_matrix(request, path, allowed, who):
    client = Client()
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))

    response = client.get(f"{path}?q=a&page=1")

    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}%3Fq%3Da%26page%3D1"
    elif who in allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
