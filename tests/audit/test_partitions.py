"""The trail's monthly partitions (audit.partitions, migration 0008): the layout the migration
leaves, where rows land, months created ahead by the application role through the owner's
function only, the append-only guards on every level, detaching and dropping by the owner, the
DEFAULT partition's rows moved into their month, and the health check that reports them."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from audit import chain, partitions, retention
from audit.models import Action, AuditLog, Severity
from audit.tasks import ensure_partitions as ensure_partitions_task
from monitoring.checks import collect_health, reset_health_cache
from tests import database

pytestmark = pytest.mark.postgres

# One action of each class, to put a row in each leaf.
ACTION_OF = {
    retention.MONEY: Action.PAYMENT_RECEIVED,
    retention.ERRORS: Action.SYSTEM_ERROR,
    retention.ACCESS: Action.LOGIN,
    retention.OTHER: Action.LEAD_CREATED,
}
CLASSES = retention.CLASSES
FAR_MONTH = date(2091, 1, 1)  # made and dropped by the tests that need a month of their own


def _this_month() -> date:
    return retention.month_start(timezone.now().astimezone(UTC).date())


def _tree() -> dict[str, tuple[str, str | None]]:
    """Every table below the trail: name -> (relkind, parent)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE tree(oid, parent) AS ("
            "   SELECT 'audit_auditlog'::regclass::oid, NULL::oid"
            "   UNION SELECT i.inhrelid, i.inhparent FROM pg_inherits i"
            "   JOIN tree ON i.inhparent = tree.oid)"
            " SELECT t.oid::regclass::text, c.relkind::text, t.parent::regclass::text"
            " FROM tree t JOIN pg_class c ON c.oid = t.oid"
        )
        return {name: (kind, parent) for name, kind, parent in cursor.fetchall()}


def _bound(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = %s::regclass", [table]
        )
        return cursor.fetchone()[0]


def _where(row_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM audit_auditlog WHERE id = %s", [row_id]
        )
        return cursor.fetchone()[0]


def _row(action: str, created_at: datetime, **fields) -> AuditLog:
    return AuditLog.objects.create(
        action=action, description=f"{action} row", created_at=created_at, **fields
    )


def _owner_run(sql: str, params=None):
    with database.owner_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


@pytest.fixture
def far_month(django_db_setup):
    """A month of its own (FAR_MONTH) made by the owner, dropped again with its leaves."""
    _owner_run("SELECT audit_create_month(%s)", [FAR_MONTH])
    yield FAR_MONTH
    _owner_run(
        f"DROP TABLE IF EXISTS {partitions.month_table(FAR_MONTH)},"
        + ", ".join(partitions.leaf_table(FAR_MONTH, c) for c in retention.CLASSES)
    )


# --- the layout -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_leaves_months_of_class_leaves_from_this_month_to_the_months_ahead():
    tree = _tree()
    first = _this_month()
    months = [
        retention.add_months(first, i) for i in range(settings.AUDIT_PARTITION_MONTHS_AHEAD + 1)
    ]

    expected = {
        "audit_auditlog": ("p", None),
        partitions.DEFAULT_PARTITION: ("r", "audit_auditlog"),
    }
    for month in months:
        expected[partitions.month_table(month)] = ("p", "audit_auditlog")
        for name in retention.CLASSES:
            expected[partitions.leaf_table(month, name)] = ("r", partitions.month_table(month))
    assert tree == expected
    start = datetime(first.year, first.month, 1, tzinfo=UTC)
    assert _bound(partitions.month_table(first)) == (
        f"FOR VALUES FROM ('{start:%Y-%m-%d} 00:00:00+00')"
        f" TO ('{retention.next_month(first):%Y-%m-%d} 00:00:00+00')"
    )
    assert _bound(partitions.DEFAULT_PARTITION) == "DEFAULT"


@pytest.mark.django_db
def test_every_class_leaf_holds_exactly_the_actions_its_retention_class_lists():
    month = _this_month()
    for name in (retention.MONEY, retention.ERRORS, retention.ACCESS):
        actions = ", ".join(f"'{a}'" for a in sorted(retention.actions_of(name)))
        assert _bound(partitions.leaf_table(month, name)) == f"FOR VALUES IN ({actions})"
    assert _bound(partitions.leaf_table(month, retention.OTHER)) == "DEFAULT"


@pytest.mark.django_db
def test_keys_and_indexes_are_the_models_on_the_parent_and_on_every_leaf():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "audit_auditlog")
    by_name = {name: c for name, c in constraints.items()}
    assert by_name["audit_auditlog_pkey"]["columns"] == ["id", "created_at", "action"]
    assert by_name["audit_spool_id_uniq"]["columns"] == ["spool_id", "created_at", "action"]
    assert by_name["audit_spool_id_uniq"]["unique"] is True
    model_indexes = {index.name for index in AuditLog._meta.indexes}
    assert model_indexes <= set(by_name)
    leaf = partitions.leaf_table(_this_month(), retention.MONEY)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_index x ON x.indexrelid = c.oid"
            " WHERE x.indrelid = %s::regclass AND c.relkind = 'i'",
            [leaf],
        )
        # Every parent index has its leaf index: the model's, the key, the spool index and the
        # trigram index over descriptions (migration 0010, PostgreSQL's, so not in the model).
        assert cursor.fetchone()[0] == len(model_indexes) + 3


@pytest.mark.django_db
def test_rows_land_in_their_months_leaf_of_their_class_and_out_of_range_in_the_default():
    month = _this_month()
    next_month = retention.next_month(month)
    placed = {}
    for name, action in ACTION_OF.items():
        for m in (month, next_month):
            row = _row(action, datetime(m.year, m.month, 1, 0, 0, 1, tzinfo=UTC))
            placed[row.pk] = partitions.leaf_table(m, name)
    late = _row(Action.PAYMENT_RECEIVED, datetime(2099, 7, 1, tzinfo=UTC))
    placed[late.pk] = partitions.DEFAULT_PARTITION

    assert {pk: _where(pk) for pk in placed} == placed
    assert partitions.default_rows() == 1


@pytest.mark.django_db
def test_list_partitions_names_each_leaf_by_month_and_class():
    listed = partitions.list_partitions()
    month = _this_month()

    assert [(p.month, p.retention_class, p.attached) for p in listed[:4]] == [
        (month, name, True) for name in retention.CLASSES
    ]
    assert listed[0].table == partitions.leaf_table(month, retention.MONEY)
    assert len(listed) == 4 * (settings.AUDIT_PARTITION_MONTHS_AHEAD + 1)


# --- months ahead -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_creates_the_missing_months_ahead_once_as_the_application_role():
    month = _this_month()
    ahead = settings.AUDIT_PARTITION_MONTHS_AHEAD
    new = [retention.add_months(month, ahead + 1), retention.add_months(month, ahead + 2)]

    created = partitions.ensure_partitions(ahead + 2)
    again = partitions.ensure_partitions(ahead + 2)

    assert created == [
        name
        for m in new
        for name in (partitions.month_table(m), *(partitions.leaf_table(m, c) for c in CLASSES))
    ]
    assert again == []
    assert partitions.months_ahead(today=month) == ahead + 2
    tree = _tree()
    assert tree[partitions.leaf_table(new[1], retention.ACCESS)] == (
        "r",
        partitions.month_table(new[1]),
    )
    # Created by the owner's function: the owner's tables, read-only for the application.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) = current_user,"
            " has_table_privilege(oid, 'SELECT'), has_table_privilege(oid, 'INSERT'),"
            " has_table_privilege(oid, 'UPDATE'), has_table_privilege(oid, 'DELETE')"
            " FROM pg_class WHERE oid = %s::regclass",
            [partitions.leaf_table(new[0], retention.MONEY)],
        )
        assert cursor.fetchone() == (False, True, False, False, False)


@pytest.mark.django_db
def test_the_application_role_cannot_create_a_partition_itself():
    with (
        pytest.raises(DatabaseError, match="permission denied for schema"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "CREATE TABLE audit_auditlog_y2093m01 PARTITION OF audit_auditlog"
            " FOR VALUES FROM ('2093-01-01 00:00+00') TO ('2093-02-01 00:00+00')"
        )
    for call in ("SELECT audit_create_month('2093-01-01')", "SELECT audit_create_default()"):
        with (
            pytest.raises(DatabaseError, match="permission denied for function"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(call)
    assert "audit_auditlog_y2093m01" not in _tree()


@pytest.mark.django_db
@pytest.mark.parametrize("months", [-1, 121, "3"])
def test_ensure_refuses_a_months_ahead_out_of_range_and_creates_nothing(months):
    before = _tree()
    with pytest.raises(partitions.PartitionError, match="from 0 to 120"):
        partitions.ensure_partitions(months)
    assert _tree() == before


@pytest.mark.django_db
def test_the_beat_task_creates_the_month_that_comes_into_range(settings):
    settings.AUDIT_PARTITION_MONTHS_AHEAD += 1
    new = retention.add_months(_this_month(), settings.AUDIT_PARTITION_MONTHS_AHEAD)

    created = ensure_partitions_task.delay().get()

    assert created[0] == partitions.month_table(new)
    assert partitions.month_table(new) in _tree()
    assert not AuditLog.objects.filter(severity=Severity.ERROR).exists()


@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_failing_beat_run_is_an_error_row_and_creates_nothing(settings):
    settings.AUDIT_PARTITION_MONTHS_AHEAD = 500  # a setting PostgreSQL's function would refuse
    before = _tree()

    assert ensure_partitions_task.delay().get() == []

    [row] = AuditLog.objects.filter(severity=Severity.ERROR)
    assert (row.action, row.description) == (
        Action.SYSTEM_ERROR,
        "Creating the audit trail's monthly partitions failed (PartitionError)",
    )
    assert _tree() == before


@pytest.mark.django_db
def test_the_command_lists_and_ensures():
    out = io.StringIO()
    call_command("audit_partitions", "ensure", "--months-ahead", "0", stdout=out)
    assert out.getvalue() == "0 tables created\n"

    out = io.StringIO()
    call_command("audit_partitions", "list", stdout=out)
    lines = out.getvalue().splitlines()
    month = _this_month()
    assert lines[0].split() == [
        f"{month:%Y-%m}",
        "money",
        "attached",
        "?",
        partitions.leaf_table(month, retention.MONEY),
    ]
    assert lines[-2:] == [
        f"months ahead: {settings.AUDIT_PARTITION_MONTHS_AHEAD}",
        "rows in audit_auditlog_default: 0",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [(["detach", "2026-13", "money"], "is not a month"), (["detach", "2026-01", "x"], "invalid")],
)
def test_the_command_refuses_a_bad_month_or_class(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("audit_partitions", *args, stdout=io.StringIO())


# --- append-only on every level -------------------------------------------------------------------


def _one_row_in_every_leaf() -> dict[str, int]:
    rows = {}
    for month in (_this_month(), retention.next_month(_this_month())):
        for name, action in ACTION_OF.items():
            at = datetime(month.year, month.month, 2, tzinfo=UTC)
            rows[partitions.leaf_table(month, name)] = _row(action, at).pk
    rows[partitions.DEFAULT_PARTITION] = _row(Action.LOGIN, datetime(2099, 1, 1, tzinfo=UTC)).pk
    return rows


def _rewrites(table: str) -> list[str]:
    return [
        f"UPDATE {table} SET description = 'forged'",  # noqa: S608 (names from the catalog)
        f"DELETE FROM {table}",  # noqa: S608
        f"TRUNCATE {table}",
    ]


def _read(table: str) -> str:
    return f"SELECT id, description, metadata::text FROM {table} ORDER BY id"  # noqa: S608


def _every_table() -> list[str]:
    return sorted(_tree())


def _refused(cursor_of, statement: str) -> bool:
    try:
        with cursor_of() as cursor:
            cursor.execute(statement)
    except DatabaseError as exc:
        return "append-only" in str(exc) or "permission denied" in str(exc)
    return False


@pytest.mark.django_db(transaction=True)
def test_update_delete_and_truncate_are_refused_on_the_parent_and_every_partition_by_both_roles():
    rows = _one_row_in_every_leaf()
    before = list(AuditLog.objects.order_by("pk").values())
    owner = database.owner_connection()
    tables = _every_table()
    assert len(tables) == 1 + 1 + 5 * (settings.AUDIT_PARTITION_MONTHS_AHEAD + 1)

    refused = {}
    for table in tables:
        for statement in _rewrites(table):
            refused[("owner", statement)] = _refused(owner.cursor, statement)
            refused[("app", statement)] = _refused(connection.cursor, statement)

    assert [key for key, was in refused.items() if not was] == []
    assert list(AuditLog.objects.order_by("pk").values()) == before
    assert len(before) == len(rows)


@pytest.mark.django_db
def test_every_partition_has_both_guards_firing_always_even_for_replicas():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger"
            " WHERE tgrelid::regclass::text = ANY(%s) AND NOT tgisinternal",
            [_every_table()],
        )
        found = sorted(cursor.fetchall())
    # The live stream's doorbell (audit.notify) is a statement trigger of the parent alone.
    assert ("audit_auditlog", "audit_auditlog_notify", "O") in found
    found.remove(("audit_auditlog", "audit_auditlog_notify", "O"))
    # The late-row trigger (audit.timeline) is a row trigger, on every table of the tree, and
    # an ordinary one: a replica's copy of the trail already holds the primary's late rows.
    late = [(table, "audit_auditlog_late", "O") for table in _every_table()]
    assert sorted(t for t in found if t[1] == "audit_auditlog_late") == sorted(late)
    # ENABLE ALWAYS ("A"): session_replication_role = replica does not switch them off.
    assert sorted(t for t in found if t[1] != "audit_auditlog_late") == sorted(
        (table, guard, "A")
        for table in _every_table()
        for guard in ("audit_auditlog_append_only", "audit_auditlog_no_truncate")
    )


# --- detach and drop (the owner) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_detach_keeps_the_rows_in_the_detached_table_and_out_of_the_trail(far_month, roles_app):
    at = datetime(far_month.year, far_month.month, 3, tzinfo=UTC)
    money = _row(Action.PAYMENT_RECEIVED, at, metadata={"amount": "100.00"})
    other = _row(Action.LEAD_CREATED, at)
    leaf = partitions.leaf_table(far_month, retention.MONEY)
    kept = _owner_run(_read(leaf))

    name = partitions.detach_partition(far_month, retention.MONEY, using=database.OWNER_ALIAS)

    assert name == leaf
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [other.pk]
    assert not AuditLog.objects.filter(pk=money.pk).exists()
    assert _owner_run(_read(leaf)) == kept
    [detached] = [p for p in partitions.list_partitions() if p.table == leaf]
    assert (detached.attached, detached.month, detached.retention_class) == (
        False,
        far_month,
        retention.MONEY,
    )
    # Still append-only, for the owner too; the application may not even read it.
    owner = database.owner_connection()
    for statement in _rewrites(leaf):
        assert _refused(owner.cursor, statement), statement
    assert _refused(connection.cursor, _read(leaf))
    # db_roles run again leaves it so (it knows a detached leaf from a business table).
    call_command(
        "db_roles", "--app-role", roles_app, database=database.OWNER_ALIAS, stdout=io.StringIO()
    )
    assert _refused(connection.cursor, _read(leaf))
    assert _owner_run(_read(leaf)) == kept


@pytest.fixture
def roles_app(django_db_setup):
    return database.ROLES.app


@pytest.mark.django_db(transaction=True)
def test_drop_refuses_an_attached_leaf_and_anything_not_an_audit_leaf(far_month):
    leaf = partitions.leaf_table(far_month, retention.ERRORS)
    row = _row(Action.SYSTEM_ERROR, datetime(far_month.year, far_month.month, 9, tzinfo=UTC))

    for table, message in [
        (leaf, "still attached"),
        ("payments_payment", "not a partition of the audit trail"),
        (partitions.month_table(far_month), "not a partition of the audit trail"),
        ("audit_auditlog_y2091m02_errors", "does not exist"),
    ]:
        with pytest.raises(partitions.PartitionError, match=message):
            partitions.drop_detached(table, using=database.OWNER_ALIAS)

    assert AuditLog.objects.filter(pk=row.pk).exists()
    assert _where(row.pk) == leaf


@pytest.mark.django_db(transaction=True)
def test_a_detached_leaf_is_dropped_by_the_owner_only(far_month):
    leaf = partitions.leaf_table(far_month, retention.ACCESS)
    _row(Action.LOGIN, datetime(far_month.year, far_month.month, 9, tzinfo=UTC))
    partitions.detach_partition(far_month, retention.ACCESS, using=database.OWNER_ALIAS)

    with pytest.raises(partitions.PartitionError, match="only the owner"):
        partitions.drop_detached(leaf)
    assert leaf in [p.table for p in partitions.list_partitions()]

    partitions.drop_detached(leaf, using=database.OWNER_ALIAS)

    assert leaf not in [p.table for p in partitions.list_partitions()]


@pytest.mark.django_db
def test_detach_refuses_a_leaf_that_is_not_attached():
    with pytest.raises(partitions.PartitionError, match="is not an attached partition"):
        partitions.detach_partition(date(2080, 5, 1), retention.MONEY)


# --- the DEFAULT partition ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_rows_in_the_default_are_reported_then_moved_into_their_month_with_the_chain_intact():
    late_month = date(2092, 3, 1)
    at = datetime(2092, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    rows = [
        _row(Action.PAYMENT_RECEIVED, at, metadata={"amount": "12.50"}),
        _row(Action.LOGIN, at),
        _row(Action.LEAD_CREATED, datetime(2099, 1, 1, tzinfo=UTC)),
    ]
    before = list(AuditLog.objects.order_by("pk").values())
    assert partitions.default_rows(cap=2) == 2  # what health counts stops at its cap
    chain.seal_pending()
    assert chain.verify().intact
    body, _ = collect_health(detailed=True)
    assert body["checks"]["auditPartitions"] == {
        "status": "healthy",
        "message": f"Audit partitions ready {settings.AUDIT_PARTITION_MONTHS_AHEAD} months ahead;"
        " 3 rows outside every month wait for the next ensure"
        " (`manage.py audit_partitions ensure`)",
        "monthsAhead": settings.AUDIT_PARTITION_MONTHS_AHEAD,
        "defaultRows": 3,
    }

    try:
        created = partitions.ensure_partitions(settings.AUDIT_PARTITION_MONTHS_AHEAD)

        # Only the months the DEFAULT had rows of (the others exist already).
        assert [name for name in created if name.count("_") == 2] == [
            partitions.month_table(late_month),
            partitions.month_table(date(2099, 1, 1)),
        ]
        assert [_where(r.pk) for r in rows] == [
            partitions.leaf_table(late_month, retention.MONEY),
            partitions.leaf_table(late_month, retention.ACCESS),
            partitions.leaf_table(date(2099, 1, 1), retention.OTHER),
        ]
        assert partitions.default_rows() == 0
        # The same rows, ids and content: the chain sealed before the move still verifies.
        assert list(AuditLog.objects.order_by("pk").values()) == before
        assert chain.verify().intact
        assert partitions.ensure_partitions(settings.AUDIT_PARTITION_MONTHS_AHEAD) == []
        reset_health_cache()
        body, _ = collect_health(detailed=True)
        assert body["checks"]["auditPartitions"]["defaultRows"] == 0
    finally:
        for month in (late_month, date(2099, 1, 1)):
            _owner_run(f"DROP TABLE IF EXISTS {partitions.month_table(month)} CASCADE")


@pytest.mark.django_db
def test_the_health_check_is_healthy_with_the_months_ahead_and_nothing_in_the_default():
    body, _ = collect_health(detailed=True)

    assert body["checks"]["auditPartitions"] == {
        "status": "healthy",
        "message": f"Audit partitions ready {settings.AUDIT_PARTITION_MONTHS_AHEAD} months ahead",
        "monthsAhead": settings.AUDIT_PARTITION_MONTHS_AHEAD,
        "defaultRows": 0,
    }


# --- the spool's unique index ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_second_insert_of_a_spooled_row_is_refused_by_the_unique_index():
    first = _row(
        Action.SYSTEM_ERROR, timezone.now(), spool_id="5a0c4f5e-7a51-4c3e-9d0b-3a8c1f6e2b11"
    )
    copy = AuditLog(
        action=first.action,
        description=first.description,
        created_at=first.created_at,
        spool_id=first.spool_id,
    )

    assert AuditLog.objects.bulk_create([copy], ignore_conflicts=True) == [copy]

    assert list(AuditLog.objects.values_list("pk", flat=True)) == [first.pk]


@pytest.mark.django_db(transaction=True)
def test_the_health_check_is_degraded_when_next_month_is_not_created():
    # The check reads the database's clock, so next month is taken away for the test.
    month = retention.next_month(_this_month())
    name = partitions.month_table(month)
    bound = _bound(name)
    _owner_run(f"ALTER TABLE audit_auditlog DETACH PARTITION {name}")
    try:
        body, status = collect_health(detailed=True)
    finally:
        _owner_run(f"ALTER TABLE audit_auditlog ATTACH PARTITION {name} {bound}")

    assert body["checks"]["auditPartitions"] == {
        "status": "degraded",
        "message": "Next month's audit partition is not created yet",
        "monthsAhead": 0,
        "defaultRows": 0,
    }
    assert (status, body["status"]) == (200, "degraded")


@pytest.mark.django_db
def test_the_ensure_function_runs_as_the_owner_with_a_fixed_path_for_the_application_role_only():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosecdef, pg_get_userbyid(p.proowner), p.proconfig,"
            " ARRAY(SELECT pg_get_userbyid(a.grantee) || ':' || a.privilege_type"
            "       FROM aclexplode(p.proacl) a WHERE a.grantee <> p.proowner ORDER BY 1)"
            " FROM pg_proc p WHERE p.oid = 'audit_ensure_partitions(integer)'::regprocedure"
        )
        definer, owner, config, grants = cursor.fetchone()
    roles = database.ROLES
    assert (definer, owner) == (True, roles.owner)
    assert config == ["search_path=public, pg_temp", "lock_timeout=3s"]
    # Not PUBLIC (grantee 0): the application role alone.
    assert grants == [f"{roles.app}:EXECUTE"]
