from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.context import audit_context
from audit.models import AuditLog
from audit.services import AuditEntry, audit_record

pytestmark = pytest.mark.django_db

URL = "/api/system/audit-logs"


def _ids(response):
    return [log["id"] for log in response.json()["logs"]]


@pytest.fixture
def rows(audit_rows):
    """Ten rows: ids ascending in time, a mix of severities."""
    made = []
    for severity in ["INFO", "INFO", "WARNING", "ERROR", "INFO", "CRITICAL", "INFO", "ERROR"]:
        made += audit_rows(**{severity: 1})
    made += audit_rows(INFO=2)
    return [row.id for row in made]


# --- who may read -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona_client", "status"),
    [("anonymous", 401), ("teacher", 403), ("marketing", 403), ("founder", 200)],
    indirect=["persona_client"],
)
def test_only_founders_read_the_audit_log(persona_client, status):
    response = persona_client.get(URL)
    assert response.status_code == status


def test_marketing_is_refused_with_the_error_body(marketing_client):
    response = marketing_client.get(URL + "?type=stats")
    assert response.status_code == 403
    assert response.json() == {
        "error": "Only founders may read the audit log.",
        "code": "permission_denied",
        "details": {},
    }


# --- the feed ---------------------------------------------------------------------------------


def test_entry_has_every_contract_field(founder_client, founder):
    with audit_context(source="COMMAND", request_id="req-42"):
        row = audit_record(
            AuditEntry(
                "LEAD_UPDATED",
                description="Lead Asha updated",
                entity_type="Lead",
                entity_id=7,
                metadata={"before": {"status": "NEW"}, "after": {"status": "CONTACTED"}},
                actor=founder,
            ),
        )
    response = founder_client.get(URL)
    assert response.status_code == 200
    entry = response.json()["logs"][0]
    created = datetime.fromisoformat(entry.pop("createdAt"))
    assert created == row.created_at
    assert created.utcoffset() is not None
    assert entry == {
        "id": row.id,
        "action": "LEAD_UPDATED",
        "severity": "INFO",
        "description": "Lead Asha updated",
        "userId": founder.id,
        "userEmail": "founder@example.com",
        "userName": "Fiona Founder",
        "ipAddress": None,
        "userAgent": "",
        "entityType": "Lead",
        "entityId": "7",
        "entityLabel": None,  # no lead 7 in this database: no name to give
        "metadata": {"before": {"status": "NEW"}, "after": {"status": "CONTACTED"}},
        "requestPath": "",
        "requestMethod": "",
        "requestId": "req-42",
        "errorMessage": "",
    }


def test_default_is_the_newest_fifty_newest_first(founder_client, audit_rows):
    made = [row.id for row in audit_rows(INFO=60)]
    response = founder_client.get(URL)
    assert _ids(response) == sorted(made, reverse=True)[:50]
    assert response.json()["nextCursor"] == max(made)


def test_limit_bounds_the_page(founder_client, rows):
    assert _ids(founder_client.get(URL + "?limit=3")) == sorted(rows, reverse=True)[:3]
    assert len(_ids(founder_client.get(URL + "?limit=200"))) == 10


def test_after_returns_only_newer_entries_newest_first(founder_client, rows):
    response = founder_client.get(URL + f"?after={rows[6]}")
    assert _ids(response) == [rows[9], rows[8], rows[7]]
    assert response.json()["nextCursor"] == rows[9]


def test_after_with_nothing_new_returns_the_same_cursor(founder_client, rows):
    response = founder_client.get(URL + f"?after={rows[9]}")
    assert response.json() == {"logs": [], "nextCursor": rows[9]}


def test_an_empty_log_has_no_cursor(founder_client):
    assert founder_client.get(URL).json() == {"logs": [], "nextCursor": None}


def test_polling_with_next_cursor_walks_every_entry_without_a_gap(founder_client, rows):
    seen, cursor = [], rows[0]
    for _ in range(5):
        body = founder_client.get(URL + f"?after={cursor}&limit=4").json()
        seen += reversed([log["id"] for log in body["logs"]])
        cursor = body["nextCursor"]
    assert seen == rows[1:]


def test_before_pages_back_through_history(founder_client, rows):
    assert _ids(founder_client.get(URL + f"?before={rows[3]}&limit=2")) == [rows[2], rows[1]]


def test_errors_view_holds_only_error_and_critical(founder_client, rows):
    response = founder_client.get(URL + "?type=errors")
    assert _ids(response) == [rows[7], rows[5], rows[3]]
    assert [log["severity"] for log in response.json()["logs"]] == ["ERROR", "CRITICAL", "ERROR"]


def test_errors_view_with_after_polls_new_errors_only(founder_client, rows):
    assert _ids(founder_client.get(URL + f"?type=errors&after={rows[3]}")) == [rows[7], rows[5]]


# --- filters ----------------------------------------------------------------------------------


def test_filter_by_severity(founder_client, rows):
    assert _ids(founder_client.get(URL + "?severity=WARNING")) == [rows[2]]


def test_filter_by_action(founder_client, audit_rows):
    wanted = audit_rows(action="INVOICE_SENT", INFO=2)
    audit_rows(action="LEAD_CREATED", INFO=3)
    response = founder_client.get(URL + "?action=INVOICE_SENT")
    assert _ids(response) == [wanted[1].id, wanted[0].id]


def test_filter_by_entity_shows_that_entitys_history(founder_client):
    mine = [
        audit_record(AuditEntry("LEAD_CREATED", description="a", entity_type="Lead", entity_id=5)),
        audit_record(AuditEntry("LEAD_UPDATED", description="b", entity_type="Lead", entity_id=5)),
    ]
    audit_record(AuditEntry("LEAD_CREATED", description="c", entity_type="Lead", entity_id=6))
    audit_record(AuditEntry("INVOICE_SENT", description="d", entity_type="Invoice", entity_id=5))
    response = founder_client.get(URL + "?entityType=Lead&entityId=5")
    assert _ids(response) == [mine[1].id, mine[0].id]


def test_filter_by_user(founder_client, founder, marketing):
    theirs = audit_record(AuditEntry("LEAD_CREATED", description="a", actor=marketing))
    audit_record(AuditEntry("LEAD_CREATED", description="b", actor=founder))
    assert _ids(founder_client.get(URL + f"?userId={marketing.id}")) == [theirs.id]


def test_filter_since(founder_client, audit_rows):
    audit_rows(INFO=2, at=timezone.now() - timedelta(hours=3))
    recent = audit_rows(INFO=1, at=timezone.now() - timedelta(minutes=30))
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    response = founder_client.get(URL, {"since": since})
    assert _ids(response) == [recent[0].id]


# --- bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=everything", "type"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("before=0", "before"),
        ("severity=DEBUG", "severity"),
        ("action=lead_created", "action"),
        ("action=" + "A" * 65, "action"),
        ("entityType=" + "x" * 65, "entityType"),
        ("entityId=" + "9" * 65, "entityId"),
        ("userId=me", "userId"),
        ("userId=0", "userId"),
        ("since=yesterday", "since"),
        ("since=0001-01-01T00:00:00", "since"),
        ("entity=Lead", "entity"),
        ("offset=50", "offset"),
        ("limit=5&limit=6", "limit"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(founder_client, query, field):
    response = founder_client.get(f"{URL}?{query}")
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["details"])) == ("validation_error", [field])


# --- stats ------------------------------------------------------------------------------------


def test_stats_count_the_last_24_hours_per_severity_and_top_actions(founder_client, audit_rows):
    now = timezone.now()
    audit_rows(action="LOGIN", INFO=5, at=now - timedelta(hours=2))
    audit_rows(action="LOGIN_FAILED", WARNING=3, at=now - timedelta(minutes=10))
    audit_rows(action="API_ERROR", ERROR=2, CRITICAL=1, at=now - timedelta(minutes=5))
    audit_rows(action="LOGIN", INFO=100, ERROR=7, at=now - timedelta(hours=25))
    with time_machine.travel(now, tick=False):
        response = founder_client.get(URL + "?type=stats")
    assert response.status_code == 200
    stats = response.json()["stats"]
    hourly = stats.pop("hourly")
    assert stats == {
        "totalLogs": 11,
        "infoCount": 5,
        "warningCount": 3,
        "errorCount": 2,
        "criticalCount": 1,
        "topActions": [
            {"action": "LOGIN", "count": 5},
            {"action": "API_ERROR", "count": 3},
            {"action": "LOGIN_FAILED", "count": 3},
        ],
    }
    assert len(hourly) == 24
    assert sum(h["total"] for h in hourly) == 11
    assert sum(h["errors"] for h in hourly) == 3
    current_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(hourly[-1]["hour"]) == current_hour
    assert datetime.fromisoformat(hourly[0]["hour"]) == current_hour - timedelta(hours=23)


def test_stats_keep_only_the_ten_most_frequent_actions(founder_client, audit_rows):
    for i in range(12):
        audit_rows(action=f"ACTION_{i:02d}", INFO=i + 1)
    top = founder_client.get(URL + "?type=stats").json()["stats"]["topActions"]
    assert [t["action"] for t in top] == [f"ACTION_{i:02d}" for i in range(11, 1, -1)]


# --- cost -------------------------------------------------------------------------------------


def test_feed_reads_are_bounded_by_time_without_offset_or_count(
    founder_client, rows, django_assert_num_queries
):
    founder_client.get(URL)  # the token's last-used time is written on first use
    founder_client.get(URL + f"?after={rows[2]}&limit=10")  # the month's first row, once
    with CaptureQueriesContext(connection) as queries:
        founder_client.get(URL + f"?after={rows[2]}&type=errors&limit=10")
    feed_sql = [q["sql"] for q in queries if 'FROM "audit_auditlog"' in q["sql"]]
    partitioned = connection.vendor == "postgresql"
    # PostgreSQL: the cursor row's time (bounded by its month's first row), then the page from
    # there on; SQLite's one table: the page.
    assert len(feed_sql) == (2 if partitioned else 1)
    for sql in feed_sql:
        assert "OFFSET" not in sql.upper()
        assert "COUNT(" not in sql.upper()
        if partitioned:
            assert '"audit_auditlog"."created_at" >=' in sql, sql
            assert '"audit_auditlog"."created_at" <=' in sql, sql
    # The token lookup, (PostgreSQL) the late rows and the database's clock, and the page.
    with django_assert_num_queries(3 if partitioned else 2):
        founder_client.get(URL)


def test_stats_are_the_fold_mark_and_one_grouped_query(
    founder_client, rows, django_assert_num_queries
):
    founder_client.get(URL)
    # The token, the fold's mark, then the counts: rollup, tail, edges and the fold's version in
    # one UNION ALL (audit.rollup.window_counts).
    with django_assert_num_queries(3):
        founder_client.get(URL + "?type=stats")


def test_rows_cannot_be_edited_through_the_api(founder_client, rows):
    assert founder_client.post(URL, {}, content_type="application/json").status_code == 405
    assert AuditLog.objects.count() == 10
