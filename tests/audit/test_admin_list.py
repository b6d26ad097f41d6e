"""The audit log in the Django admin: bounded pages, keyset beyond them, no count of the trail,
and a search box whose every term goes through one index (plans: test_index_plans.py)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit import admin as audit_admin
from audit.models import AuditLog

pytestmark = pytest.mark.django_db

URL = "/admin/audit/auditlog/"
# Django's count of a sliced queryset: a COUNT over a LIMITed subquery.
BOUNDED_COUNT = re.compile(r"^SELECT COUNT\(\*\) FROM \(SELECT .* LIMIT (\d+)\) subquery$", re.S)


@pytest.fixture
def admin_client_(founder):
    client = Client()
    client.force_login(founder)
    return client


@pytest.fixture
def many(db):
    """120 rows, ids ascending; returns their ids newest first."""
    AuditLog.objects.bulk_create(
        AuditLog(action="LEAD_UPDATED", description=f"Lead {i} updated") for i in range(120)
    )
    return list(AuditLog.objects.order_by("-id").values_list("id", flat=True))


def _shown(response) -> list[int]:
    assert response.status_code == 200
    return [row.pk for row in response.context["cl"].result_list]


def _counts(queries) -> list[str]:
    """The counts over the trail (audit.presence counts a term's pieces in its own table)."""
    return [
        q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "audit_auditlog" in q["sql"]
    ]


@pytest.mark.parametrize(
    ("persona", "status"), [("anonymous", 302), ("teacher", 302), ("marketing", 302)]
)
def test_only_founders_open_the_audit_log_in_the_admin(request, persona, status, many):
    client = Client()
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    response = client.get(URL)
    assert response.status_code == status
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(
    "query",
    ["", "?p=2", "?severity__exact=ERROR", "?q=updated", "?q=LEAD_UPDATED", "?id__lt=50"],
)
def test_the_list_never_counts_more_than_its_pages(admin_client_, many, query):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client_.get(URL + query)
    assert response.status_code == 200
    limit = audit_admin.AUDIT_ADMIN_PAGES * 50 + 1
    # The count the changelist asks for on every page is the number of ids of at most `limit`
    # rows (audit.timeline reads them month by month), never a COUNT of the trail.
    for sql in _counts(queries):
        match = BOUNDED_COUNT.match(sql)
        assert match, sql
        assert int(match[1]) <= limit
    trail = [q["sql"] for q in queries if 'FROM "audit_auditlog"' in q["sql"]]
    assert any(sql.endswith(f"LIMIT {limit}") for sql in trail), trail
    # Every other read is bounded too: by a LIMIT, or the page's rows by the ids counted.
    for sql in trail:
        bounded = re.search(r"LIMIT \d+$", sql) or re.search(r'"audit_auditlog"\."id" IN \(\d', sql)
        assert bounded, f"a read of the trail without a bound: {sql}"


def test_the_first_page_is_the_newest_fifty(admin_client_, many):
    assert _shown(admin_client_.get(URL)) == many[:50]


def test_older_entries_follow_by_keyset(admin_client_, many):
    first = admin_client_.get(URL)
    older = first.context["cl"].older_query
    assert older == f"?id__lt={many[49]}"
    assert _shown(admin_client_.get(URL + older)) == many[50:100]


def test_pages_stop_at_the_bound_and_say_there_is_more(admin_client_, many, monkeypatch):
    monkeypatch.setattr(audit_admin, "AUDIT_ADMIN_PAGES", 2)
    response = admin_client_.get(URL + "?p=2")
    assert _shown(response) == many[50:100]
    assert "more than 100 entries" in response.content.decode()
    assert 'id="audit-older"' in response.content.decode()
    # Page 3 would be an OFFSET past the bound: the admin refuses it as an unknown page.
    assert admin_client_.get(URL + "?p=3").status_code == 302


def test_a_short_list_says_how_many_and_offers_no_older_link(admin_client_, db):
    AuditLog.objects.create(action="LOGIN", description="Logged in")
    response = admin_client_.get(URL)
    assert "1 audit log" in response.content.decode()
    assert 'id="audit-older"' not in response.content.decode()


def test_the_list_cannot_be_sorted_by_another_column(admin_client_, many):
    # ?o=3 would sort by description ("Lead 0", "Lead 1", "Lead 10", ...): the whole table
    # sorted for one page.
    response = admin_client_.get(URL + "?o=3")
    assert _shown(response) == many[:50]


# --- search ----------------------------------------------------------------------------------


@pytest.fixture
def varied(db):
    def make(**fields) -> int:
        return AuditLog.objects.create(**{"description": "x", "action": "LOGIN", **fields}).id

    return {
        "payment": make(action="PAYMENT_RECEIVED", description="Payment of EUR 134.00"),
        "invoice": make(entity_type="Invoice", entity_id="7", description="Invoice sent"),
        "invoice_70": make(entity_type="Invoice", entity_id="70", description="Invoice sent"),
        "asha": make(user_email="Asha@Example.com", description="Logged in"),
        "request": make(request_id="req-4711", description="Lead updated"),
        "text": make(description="Refund requested by the lead"),
        "uuid": make(request_id="5f0c6a7e-3b1d-4c2a-9e8f-0a1b2c3d4e5f", description="Lead viewed"),
        "hex_text": make(description="Webhook 0123456789abcdef0123456789abcdef received"),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("PAYMENT_RECEIVED", ["payment"]),
        ("Invoice #7", ["invoice"]),
        ("Invoice#70", ["invoice_70"]),
        # A colon is common in messages ("Error: timeout"): free text, not an entity.
        ("Invoice:70", []),
        ("asha@example.COM", ["asha"]),
        ("req-4711", ["request"]),
        ("refund", ["text"]),
        ("EUR 134", ["payment"]),
        # Not a request id any row carries: free text, which finds nothing here.
        ("req-0000", []),
        ("5f0c6a7e-3b1d-4c2a-9e8f-0a1b2c3d4e5f", ["uuid"]),
        # The shape of the request ids issued here: a request id only, never free text.
        ("0123456789abcdef0123456789abcdef", []),
        ("Webhook 0123456789abcdef", ["hex_text"]),
    ],
)
def test_each_search_shape_finds_its_rows(admin_client_, varied, term, expected):
    response = admin_client_.get(URL, {"q": term})
    assert _shown(response) == sorted((varied[name] for name in expected), reverse=True)


@pytest.mark.parametrize("term", ["ab", "a-b-c", "x" * 101])
def test_an_unsearchable_term_finds_nothing_and_says_why(admin_client_, varied, term):
    response = admin_client_.get(URL, {"q": term}, follow=True)
    assert _shown(response) == []
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1
    assert messages[0].startswith("Search for at")


def test_a_search_past_the_bound_says_more_than_not_a_count(admin_client_, many, monkeypatch):
    monkeypatch.setattr(audit_admin, "AUDIT_ADMIN_PAGES", 2)
    page = admin_client_.get(URL, {"q": "updated"}).content.decode()
    assert "more than 100 results" in page
    assert "101 results" not in page
