"""Which months hold each filter's and search term's rows (audit.presence): the fold lists every
month of every kind and key there is, a page read with them is the page of one query over the
whole trail however far the fold has come, and a filter or term that matches nothing reads only
the rows not folded yet.

The history is test_timeline's: 14 months of rows, and three late ones on top.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit import partitions, presence
from audit.models import AuditKeyMonth, AuditKindMonth, AuditLog, AuditPresenceState, ChainState
from audit.selectors import audit_log_page
from audit.services import AuditEntry, audit_record
from tests.audit.test_timeline import _expected
from tests.factories import make_lead

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ADMIN = "/admin/audit/auditlog/"


def _horizon_at(top: int) -> None:
    """The chain's horizon at `top`: the sealer would put it there once those rows committed."""
    ChainState.objects.update_or_create(pk=1, defaults={"horizon_id": top})


def _newest_id() -> int:
    return AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _fold_to(top: int) -> None:
    _horizon_at(top)
    while presence.fold_batch().more:
        pass
    assert AuditPresenceState.objects.get().folded_to_id == top


def _hash(value: str) -> int:
    return int.from_bytes(hashlib.md5(value.encode()).digest()[:8], "big", signed=True)  # noqa: S324


def _months_of_the_trail(sql: str) -> set[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return set(cursor.fetchall())


MONTH = "(date_trunc('month', created_at AT TIME ZONE 'UTC'))::date"


def test_the_fold_lists_every_month_of_every_kind_and_key_and_nothing_else(history, settings):
    settings.AUDIT_PRESENCE_FOLD_IDS = 700  # several batches, each in its own transaction
    _fold_to(_newest_id())
    kinds = _months_of_the_trail(
        f"SELECT DISTINCT action, severity, entity_type, {MONTH} FROM audit_auditlog"  # noqa: S608
    )
    assert len(kinds) > 20
    assert set(
        AuditKindMonth.objects.values_list("action", "severity", "entity_type", "month")
    ) == (kinds)
    keys = {
        (AuditKeyMonth.Kind.USER_EMAIL, _hash(email.upper()), month)
        for email, month in _months_of_the_trail(
            f"SELECT DISTINCT user_email, {MONTH} FROM audit_auditlog"  # noqa: S608
            " WHERE user_email <> ''"
        )
    } | {
        (AuditKeyMonth.Kind.REQUEST_ID, _hash(request_id), month)
        for request_id, month in _months_of_the_trail(
            f"SELECT DISTINCT request_id, {MONTH} FROM audit_auditlog"  # noqa: S608
            " WHERE request_id <> ''"
        )
    }
    keys |= {
        (AuditKeyMonth.Kind.TEXT, _hash(description.upper()[i : i + 3]), month)
        for description, month in _months_of_the_trail(
            f"SELECT DISTINCT description, {MONTH} FROM audit_auditlog"  # noqa: S608
        )
        for i in range(len(description) - 2)
    }
    keys |= {
        (AuditKeyMonth.Kind.USER_ID, _hash(str(user_id)), month)
        for user_id, month in _months_of_the_trail(
            f"SELECT DISTINCT user_id, {MONTH} FROM audit_auditlog"  # noqa: S608
            " WHERE user_id IS NOT NULL"
        )
    } | {
        (AuditKeyMonth.Kind.ENTITY, _hash(f"{entity_type}#{entity_id}"), month)
        for entity_type, entity_id, month in _months_of_the_trail(
            f"SELECT DISTINCT entity_type, entity_id, {MONTH} FROM audit_auditlog"  # noqa: S608
            " WHERE entity_id <> ''"
        )
    }
    assert {kind for kind, _, _ in keys} == set(AuditKeyMonth.Kind)
    assert len(keys) > 3000
    assert set(AuditKeyMonth.objects.values_list("kind", "key", "month")) == keys


def test_the_fold_stops_at_the_horizon_and_folding_again_changes_nothing(history):
    top = _newest_id()
    _fold_to(top - 100)
    assert presence.fold_batch().rows == 0  # nothing new below the horizon
    listed = set(AuditKeyMonth.objects.values_list("kind", "key", "month"))
    # The newest row's request id is above the horizon: not listed yet.
    newest_request = AuditLog.objects.get(id=top).request_id
    assert presence.of_key(presence.Kind.REQUEST_ID, newest_request).months == ()
    # A fold over rows already folded (its mark set back) adds nothing twice.
    AuditPresenceState.objects.update(folded_to_id=0)
    _fold_to(top - 100)
    assert set(AuditKeyMonth.objects.values_list("kind", "key", "month")) == listed


FILTERS: list[dict[str, Any]] = [
    {"errors_only": True},
    {"errors_only": True, "entity_type": "Lead"},  # nothing matches
    {"errors_only": True, "severity": "INFO"},  # nothing can match
    {"severity": "WARNING", "action": "LOGIN"},
    {"action": "PAYMENT_RECEIVED", "entity_type": "Order"},
    {"action": "USER_UPDATED"},  # nothing matches
    {"entity_type": "Order", "user_id": 2},
    {"q": "row 12"},  # any case, across words
    {"q": "ow 3", "action": "LOGIN"},
    {"q": "nothing like it"},  # nothing matches
    {"q": "late"},  # the late rows' description
    {"entity_type": "Order", "entity_id": "7"},
    {"entity_type": "Order", "entity_id": "4000"},  # nothing matches
    {"user_id": 2},
    {"user_id": 99, "q": "row"},  # nothing matches
]


def test_every_page_read_with_the_months_is_the_page_of_a_query_over_the_whole_trail(history):
    ids = list(AuditLog.objects.order_by("id").values_list("id", flat=True))
    cursors: list[dict[str, Any]] = [{}, {"after": 0}, {"after": ids[-40]}, {"before": ids[100]}]
    cursors += [{"before": ids[len(ids) // 2]}, {"after": ids[len(ids) // 3]}]
    # Not folded yet, folded to the middle (the newer half above the mark), folded to the top;
    # then rows written after the fold, of kinds the trail had never had.
    stages = [ids[0] - 1, ids[len(ids) // 2], ids[-1]]
    mismatches = []
    for stage in [*stages, "new rows"]:
        if stage == "new rows":
            lead = make_lead()
            for action in ("USER_UPDATED", "LEAD_UPDATED"):
                audit_record(
                    AuditEntry(action, severity="ERROR", description="after the fold", entity=lead)
                )
        else:
            _fold_to(stage)
        for cursor, filters, limit in itertools.product(cursors, FILTERS, [1, 50]):
            got = [row.id for row in audit_log_page(limit=limit, **cursor, **filters).logs]
            want = _expected(limit, **cursor, **filters)
            if got != want:
                mismatches.append((stage, cursor, filters, limit, got[:5], want[:5]))
    assert mismatches == []
    # The rows written after the fold are found: they are above its mark.
    assert [row.action for row in audit_log_page(limit=5, action="USER_UPDATED").logs] == [
        "USER_UPDATED"
    ]


def _planned_months(queries) -> set[str]:
    """The months whose leaves the trail's queries were planned over."""
    leaves = {p.table: p.month for p in partitions.list_partitions()}
    planned = set()
    for query in [q["sql"] for q in queries if 'FROM "audit_auditlog"' in q["sql"]]:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + query)
            raw = cursor.fetchone()[0]
        plan = json.dumps(json.loads(raw) if isinstance(raw, str) else raw)
        planned |= {f"{month:%Y-%m}" for name, month in leaves.items() if f'"{name}"' in plan}
    return planned


def test_a_filter_that_matches_nothing_reads_only_the_rows_not_folded_yet(history):
    _fold_to(_newest_id())
    audit_log_page(limit=50, errors_only=True, entity_type="Lead")  # the anchors, once
    with CaptureQueriesContext(connection) as queries:
        page = audit_log_page(limit=50, errors_only=True, entity_type="Lead")
    assert page.logs == []
    assert _planned_months(queries) <= _late_and_recent_months(history)


def _late_and_recent_months(history) -> set[str]:
    """The months a read that the presence rules out everywhere still plans: those of the late
    rows (looked up by id and time, at every read), and this month and the one before (the rows
    above the fold's mark: newer than the first row of the mark's month, or a MARGIN less)."""
    late = AuditLog.objects.filter(id__in=history["late"]).values_list("created_at", flat=True)
    now = history["now"].astimezone(UTC)
    recent = {now, now.replace(day=1) - timedelta(days=1)}
    months = {f"{moment.astimezone(UTC):%Y-%m}" for moment in [*late, *recent]}
    assert len(months) < 8  # of the 15 the trail has
    return months


@pytest.fixture
def admin_client(founder):
    client = Client()
    client.force_login(founder)
    return client


def _shown(response) -> list[int]:
    assert response.status_code == 200
    return [row.pk for row in response.context["cl"].result_list]


def test_an_address_nobody_used_reads_only_the_rows_not_folded_yet(history, admin_client):
    _fold_to(_newest_id())
    admin_client.get(ADMIN, {"q": "nobody@planbeta.example"})  # the anchors, once
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(ADMIN, {"q": "nobody@planbeta.example"})
    assert _shown(response) == []
    assert _planned_months(queries) <= _late_and_recent_months(history)
    # An address that is there, in any case: its rows, newest first.
    response = admin_client.get(ADMIN, {"q": "STAFF@planbeta.example"})
    assert _shown(response) == list(
        AuditLog.objects.filter(user_email__iexact="staff@planbeta.example")
        .order_by("-id")
        .values_list("id", flat=True)[:50]
    )


@pytest.mark.parametrize(
    "search",
    [
        {"q": "zebra"},
        {"q": "Row 1", "errors_only": True, "entity_type": "Lead"},
        {"user_id": 99},
        {"entity_type": "Order", "entity_id": "4000"},
    ],
    ids=["a word nobody wrote", "words of rows of other kinds", "a user", "an entity"],
)
def test_a_text_user_or_entity_that_no_row_holds_reads_only_the_rows_not_folded_yet(
    history, search
):
    _fold_to(_newest_id())
    audit_log_page(limit=50, **search)  # the anchors, once
    with CaptureQueriesContext(connection) as queries:
        page = audit_log_page(limit=50, **search)
    assert page.logs == []
    assert _planned_months(queries) <= _late_and_recent_months(history)


def test_the_months_of_a_text_are_found_in_any_case_beyond_ascii(history, admin_client):
    row = audit_record(AuditEntry("LEAD_UPDATED", description="Anruf bei Frau Müller-Straße"))
    _fold_to(row.id)
    month = datetime(row.created_at.year, row.created_at.month, 1, tzinfo=UTC)
    for term in ("müller-straße", "ÜLLER-STRAßE", "Frau M"):
        assert presence.of_text(term).months == (month,), term
    # Python's upper() of ß is SS, PostgreSQL's keeps ß: the search is the database's, and the
    # months are of the database's capitals too.
    assert not AuditLog.objects.filter(description__icontains="MÜLLER-STRASSE").exists()
    assert presence.of_text("MÜLLER-STRASSE").months == ()
    assert _shown(admin_client.get(ADMIN, {"q": "müller-straße"})) == [row.id]


def test_the_oldest_request_is_found_in_its_month_and_an_unknown_one_reads_no_month(
    history, admin_client
):
    _fold_to(_newest_id())
    oldest = AuditLog.objects.order_by("id").first()
    admin_client.get(ADMIN, {"q": oldest.request_id})  # the anchors, once
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(ADMIN, {"q": oldest.request_id})
    assert _shown(response) == [oldest.id]
    assert _planned_months(queries) <= _late_and_recent_months(history) | {
        f"{oldest.created_at.astimezone(UTC):%Y-%m}"
    }
    # An id of the shape the app issues that no row carries: no rows, and no free-text search
    # of the descriptions either (the trigram index of every month).
    unknown = "c4ca4238a0b923820dcc509a6f75849b"
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(ADMIN, {"q": unknown})
    assert _shown(response) == []
    assert not [q for q in queries if '"description"' in q["sql"] and "LIKE" in q["sql"]]
    assert _planned_months(queries) <= _late_and_recent_months(history)


def test_beats_fold_task_folds_up_to_the_horizon(history):
    from audit.tasks import fold_presence

    top = _newest_id()
    _horizon_at(top)
    assert fold_presence.delay().get() == AuditLog.objects.count()
    assert AuditPresenceState.objects.get().folded_to_id == top
