"""GET /api/system/audit-logs/export?format=csv|jsonl: every matching entry, streamed."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import audit_context
from audit.models import Action, AuditLog
from audit.services import AuditEntry, audit_record
from monitoring import export

pytestmark = pytest.mark.django_db

URL = "/api/system/audit-logs/export"
FEED = "/api/system/audit-logs"


def _body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def _accesses():
    return AuditLog.objects.filter(action=Action.DATA_ACCESSED)


@pytest.fixture
def rows(audit_rows):
    made = audit_rows(INFO=3) + audit_rows(ERROR=2) + audit_rows(action="LOGIN", INFO=1)
    return [row.id for row in made]


@pytest.mark.parametrize(
    ("persona_client", "status"),
    [("anonymous", 401), ("teacher", 403), ("marketing", 403), ("founder", 200)],
    indirect=["persona_client"],
)
def test_only_founders_export(persona_client, status, rows):
    response = persona_client.get(URL, {"format": "csv"})
    assert response.status_code == status
    if status != 200:
        assert response["Content-Type"] == "application/json"
        assert _accesses().count() == 0
    else:
        _body(response)


def test_jsonl_lines_are_the_feeds_entries_oldest_first(founder_client, rows):
    with audit_context(source="COMMAND", request_id="req-7"):
        audit_record(
            AuditEntry(
                "LEAD_UPDATED",
                description="Lead 4 updated",
                entity_type="Lead",
                entity_id=4,
                metadata={"changes": {"status": {"before": "NEW", "after": "LOST"}}},
            )
        )
    feed = founder_client.get(FEED, {"limit": 200}).json()["logs"]

    response = founder_client.get(URL, {"format": "jsonl"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    assert response["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in _body(response).splitlines()]
    # The export's own DATA_ACCESSED row was written before the rows were read.
    assert lines[:-1] == list(reversed(feed))
    assert lines[-1]["action"] == "DATA_ACCESSED"
    assert set(lines[0]) == set(feed[0])


def test_csv_has_a_header_row_and_one_row_per_entry(founder_client, rows):
    response = founder_client.get(URL, {"format": "csv", "type": "errors"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(_body(response))))
    assert [int(r["id"]) for r in table] == rows[3:5]
    assert list(table[0]) == list(founder_client.get(FEED).json()["logs"][0])
    assert {r["severity"] for r in table} == {"ERROR"}


def test_an_empty_export_is_still_a_header(founder_client):
    response = founder_client.get(URL, {"format": "csv", "action": "NOTHING_LIKE_THIS"})
    lines = _body(response).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("id,action,severity,description,")


def test_filters_are_the_feeds(founder_client, rows):
    response = founder_client.get(URL, {"format": "jsonl", "action": "LOGIN", "after": rows[0]})
    assert [json.loads(line)["id"] for line in _body(response).splitlines()] == [rows[5]]


def test_cells_a_spreadsheet_would_run_are_made_text(founder_client):
    for text in ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "plain"]:
        audit_record(AuditEntry("LEAD_UPDATED", description=text))
    response = founder_client.get(URL, {"format": "csv", "action": "LEAD_UPDATED"})
    cells = [r["description"] for r in csv.DictReader(io.StringIO(_body(response)))]
    assert cells == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tTab",
        "plain",
    ]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"format": "xml"},
        {"format": "csv", "limit": "5"},
        {"format": "csv", "type": "stats"},
        {"format": "csv", "entityId": "3"},
        {"format": "csv", "after": "1", "before": "9"},
        {"format": "csv", "since": "yesterday"},
        {"format": "csv", "bogus": "1"},
    ],
)
def test_bad_parameters_are_a_400_that_writes_nothing(founder_client, query):
    before = AuditLog.objects.count()
    response = founder_client.get(URL, query)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert AuditLog.objects.count() == before


def test_an_export_is_one_data_accessed_row_per_query_and_hour(founder_client, founder, rows):
    for _ in range(3):
        _body(founder_client.get(URL, {"format": "csv"}))
    _body(founder_client.get(URL, {"format": "csv", "type": "errors"}))
    accesses = list(_accesses().order_by("id"))
    assert [(a.user_id, a.entity_type, a.metadata["what"]) for a in accesses] == [
        (founder.pk, "AuditLog", "audit_log_export"),
        (founder.pk, "AuditLog", "audit_log_export"),
    ]
    assert accesses[0].metadata["query"] == {"format": "csv"}
    assert accesses[1].metadata["query"] == {"type": "errors", "format": "csv"}


@pytest.mark.postgres
def test_rows_are_read_in_short_keyset_chunks_with_no_cursor_left_open(
    founder_client, audit_rows, monkeypatch
):
    # A server-side cursor outside a transaction is kept WITH HOLD, which makes PostgreSQL copy
    # the whole result before the first row: at 10 million rows, past the statement timeout.
    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 2)
    ids = [row.id for row in audit_rows(INFO=2) + audit_rows(ERROR=3)]
    response = founder_client.get(URL, {"format": "jsonl"})
    content = iter(response.streaming_content)

    with CaptureQueriesContext(connection) as queries:
        first = next(content)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_cursors")
            (open_cursors,) = cursor.fetchone()
        lines = [first, *content]
    response.close()

    assert open_cursors == 0
    exported = [json.loads(line)["id"] for line in lines]
    assert exported[:-1] == ids  # and the export's own DATA_ACCESSED row last
    assert exported == sorted(exported)
    reads = [
        q["sql"]
        for q in queries
        if 'FROM "audit_auditlog"' in q["sql"] and q["sql"].endswith("LIMIT 2")
    ]
    # Six rows, two a chunk: three full chunks and the empty one that ends it, each "after the
    # last id" but the first, and each bounded by time (audit.timeline).
    assert len(reads) == 4
    assert [sql.count('"audit_auditlog"."id" >') for sql in reads] == [0, 1, 1, 1]
    assert all('"audit_auditlog"."created_at" >=' in sql for sql in reads)


def test_an_export_with_filters_reads_every_match_across_chunks(
    founder_client, audit_rows, monkeypatch
):
    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 2)
    audit_rows(INFO=3)
    errors = [row.id for row in audit_rows(ERROR=5)]
    audit_rows(INFO=2)

    response = founder_client.get(URL, {"format": "jsonl", "type": "errors"})

    assert [json.loads(line)["id"] for line in _body(response).splitlines()] == errors
