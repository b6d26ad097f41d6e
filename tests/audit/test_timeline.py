"""Reads of the partitioned trail bounded by time (audit.timeline): the late-row trigger, and every
page the same as one query over the whole trail gives, while planned over a few months only.

The history here is 14 months of rows written by the owner in time order, as a trail written live
holds them (the late-row trigger paused, as the benchmarks fill), into months created for them;
then a few late rows on top, with the trigger on: a spooled row replayed three months after it
happened, and a writer whose clock ran two hours ahead.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import partitions, retention, timeline
from audit.models import Action, AuditLateRow, AuditLog
from audit.selectors import any_row_before, audit_log_matching, audit_log_page, latest_row
from audit.services import AuditEntry, audit_record
from monitoring import export
from tests.factories import make_lead

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/system/audit-logs"


def _expected(limit: int, after: int | None = None, **filters: Any) -> list[int]:
    """The page as one query over the whole trail gives it."""
    qs = audit_log_matching(after=after, **filters)
    if after is not None:
        return list(reversed(qs.order_by("id").values_list("id", flat=True)[:limit]))
    return list(qs.order_by("-id").values_list("id", flat=True)[:limit])


def test_every_page_is_the_one_a_query_over_the_whole_trail_gives(history):
    ids = list(AuditLog.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) > 3000
    cursors: list[dict[str, Any]] = [{}]
    for row_id in [ids[0], ids[10], ids[len(ids) // 3], ids[-200], ids[-1], *history["late"]]:
        cursors += [{"after": row_id}, {"before": row_id}]
    cursors += [{"after": 0}, {"before": ids[-1] + 10}]
    filter_sets: list[dict[str, Any]] = [
        {},
        {"errors_only": True},
        {"severity": "WARNING"},
        {"action": "PAYMENT_RECEIVED"},
        {"action": "LOGIN", "user_id": 1},
        {"entity_type": "Order", "entity_id": "7"},
        {"since": history["now"] - timedelta(days=100)},
        {"action": "USER_UPDATED"},  # nothing matches
    ]
    mismatches = []
    for cursor, filters, limit in itertools.product(cursors, filter_sets, [1, 50, 200]):
        got = [row.id for row in audit_log_page(limit=limit, **cursor, **filters).logs]
        want = _expected(limit, **cursor, **filters)
        if got != want:
            mismatches.append((cursor, filters, limit, got[:5], want[:5]))
    assert mismatches == []


def test_late_rows_are_on_the_pages_their_ids_put_them_on(history):
    newest = audit_log_page(limit=5).logs
    # The row of the clock two hours ahead is the newest id; the replayed ones below it.
    assert newest[0].id == history["late"][-1]
    replayed = history["late"][0]
    page = audit_log_page(limit=3, before=replayed + 1, action="PAYMENT_RECEIVED").logs
    assert page[0].id == replayed


def test_a_page_is_planned_over_the_months_it_needs_not_every_month(history):
    names = [p.table for p in partitions.list_partitions()] + [partitions.DEFAULT_PARTITION]
    assert len(names) >= (history["months"] + 1) * len(retention.CLASSES)
    ids = list(AuditLog.objects.order_by("id").values_list("id", flat=True))
    timeline.forget()
    for cursor in ({}, {"after": ids[-100]}, {"before": ids[100]}, {"before": ids[len(ids) // 2]}):
        audit_log_page(limit=50, **cursor)  # the anchors, once
        with CaptureQueriesContext(connection) as queries:
            audit_log_page(limit=50, **cursor)
        for query in [q["sql"] for q in queries if 'FROM "audit_auditlog"' in q["sql"]]:
            with connection.cursor() as c:
                c.execute("EXPLAIN (FORMAT JSON) " + query)
                raw = c.fetchone()[0]
            plan = json.dumps(json.loads(raw) if isinstance(raw, str) else raw)
            planned = {name for name in names if f'"{name}"' in plan}
            # At most three months of leaves (a window across a month's end, and its margin)
            # and the DEFAULT partition.
            assert len(planned) <= 3 * len(retention.CLASSES) + 1, (cursor, sorted(planned))


def test_an_entity_s_history_is_read_from_the_entity_s_creation_on(history, founder_client):
    lead = make_lead()
    ids = [
        audit_record(AuditEntry(Action.LEAD_UPDATED, description="edited", entity=lead)).id
        for _ in range(2)
    ]
    founder_client.get(URL)  # the token's last use is recorded on the first request
    with CaptureQueriesContext(connection) as queries:
        response = founder_client.get(URL, {"entityType": "Lead", "entityId": lead.id})
    assert [entry["id"] for entry in response.json()["logs"]] == ids[::-1]
    # The page (the fixture's late rows are looked up by their ids and times besides).
    [page] = [q["sql"] for q in queries if q["sql"].endswith("LIMIT 50")]
    floor = (lead.created_at - timeline.MARGIN).astimezone(UTC).isoformat(sep=" ")
    assert f'"audit_auditlog"."created_at" >= \'{floor}\'' in page


def test_the_history_of_an_entity_that_is_gone_is_read_whole(history, founder_client):
    # No lead 7 (the history's rows name an Order 7): without a creation time, every month.
    response = founder_client.get(URL, {"entityType": "Order", "entityId": "7", "limit": 200})
    want = _expected(200, entity_type="Order", entity_id="7")
    assert [entry["id"] for entry in response.json()["logs"]] == want


def test_the_export_walks_every_row_once_in_id_order(history, founder, monkeypatch):
    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 250)
    client = Client()
    client.force_login(founder)
    response = client.get("/api/system/audit-logs/export", {"format": "jsonl"})
    assert response.status_code == 200
    exported = [json.loads(line)["id"] for line in response.streaming_content]
    expected = list(AuditLog.objects.order_by("id").values_list("id", flat=True))
    assert exported == expected  # the export's own DATA_ACCESSED row included, last


def test_the_latest_row_of_an_action_and_the_oldest_row(history):
    expected = AuditLog.objects.filter(action="SYSTEM_ERROR").order_by("-id").first()
    assert latest_row("SYSTEM_ERROR")["id"] == expected.id
    oldest = AuditLog.objects.order_by("created_at").first()
    assert any_row_before(oldest.created_at + timedelta(seconds=1))
    assert not any_row_before(oldest.created_at)


def test_the_admin_pages_are_the_newest_rows(history, founder):
    client = Client()
    client.force_login(founder)
    ids = list(AuditLog.objects.order_by("-id").values_list("id", flat=True)[:150])
    first = client.get("/admin/audit/auditlog/")
    assert [row.pk for row in first.context["cl"].result_list] == ids[:50]
    second = client.get("/admin/audit/auditlog/?p=2")
    assert [row.pk for row in second.context["cl"].result_list] == ids[50:100]
    older = client.get(f"/admin/audit/auditlog/?id__lt={ids[99]}")
    assert [row.pk for row in older.context["cl"].result_list] == ids[100:150]


# --- the trigger -------------------------------------------------------------------------------


def test_the_trigger_records_the_rows_far_from_their_insert_and_only_those(db):
    now = timezone.now()
    times = {
        "now": now,
        "half an hour ago": now - timedelta(minutes=30),
        "two hours ago": now - timedelta(hours=2),
        "a year ago": now - timedelta(days=365),
        "two hours ahead": now + timedelta(hours=2),
    }
    made = {
        name: AuditLog.objects.create(action="LOGIN", description=name, created_at=at).id
        for name, at in times.items()
    }
    late = dict(AuditLateRow.objects.filter(id__in=made.values()).values_list("id", "created_at"))
    assert late == {made[n]: times[n] for n in ("two hours ago", "a year ago", "two hours ahead")}


def test_the_application_role_may_read_the_late_rows_but_not_write_them(db):
    row = AuditLog.objects.create(action="LOGIN", description="x", created_at=timezone.now())
    before = list(AuditLateRow.objects.order_by("id").values_list("id", "created_at"))
    for statement, params in [
        ("INSERT INTO audit_late_row (id, created_at) VALUES (%s, now())", [row.id]),
        ("DELETE FROM audit_late_row", None),
        ("UPDATE audit_late_row SET created_at = now()", None),
    ]:
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, params)
    assert list(AuditLateRow.objects.order_by("id").values_list("id", "created_at")) == before
