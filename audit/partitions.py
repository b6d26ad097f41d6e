"""Monthly partitions of the audit trail on PostgreSQL, each split by retention class.

Layout (installed by migration 0007):

    audit_auditlog                      PARTITION BY RANGE (created_at), one partition per UTC month
      audit_auditlog_y2026m12           PARTITION BY LIST (action)
        audit_auditlog_y2026m12_money   FOR VALUES IN (the money actions, audit.retention)
        audit_auditlog_y2026m12_errors  FOR VALUES IN (...)
        audit_auditlog_y2026m12_access  FOR VALUES IN (...)
        audit_auditlog_y2026m12_other   DEFAULT (every other action)
      audit_auditlog_default            DEFAULT: a row dated in no created month

The DEFAULT month partition is there so that no write is ever refused for its date (a clock far
off, beat stopped for a year, a replayed row from before the oldest month). Rows in it are
reported by the `auditPartitions` health check, and `audit_ensure_partitions` moves them into
their month when it creates that month: PostgreSQL refuses to create a month while the DEFAULT
holds rows of it, so the function detaches the DEFAULT, creates the months, puts a new empty
DEFAULT in place, copies every row back through the parent (same id and content, so the hash
chain is untouched) and drops the emptied old table, all in one transaction that checks the
counts. That is the one place a table of audit rows is dropped without an archive, and only
after its rows are in the parent again.

Who does what:
* the application role (beat's daily `audit.ensure_partitions`) creates months ahead only through
  the SECURITY DEFINER function `audit_ensure_partitions(months_ahead)`, owned by the table owner:
  it cannot CREATE tables itself (planbeta/db_roles.py);
* the owner (operators, with the owner's database URL, like `db_roles`) detaches a class's month
  for retention and drops a detached table once archived (`detach_partition`, `drop_detached`).

Append-only on every level: the row trigger of migration 0002 sits on the parent, and PostgreSQL
clones it (ENABLE ALWAYS kept) onto every partition, so UPDATE and DELETE are refused through the
parent and on a partition named directly. TRUNCATE triggers are statement-level and not cloned:
each partition gets its own here. A detached leaf loses the cloned trigger (PostgreSQL drops it
on DETACH), so `detach_partition` puts both triggers back on it.

On SQLite there is one table: `list_partitions` and `ensure_partitions` return empty lists and
`detach_partition` and `drop_detached` raise PartitionError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from audit import retention

TABLE = "audit_auditlog"
DEFAULT_PARTITION = f"{TABLE}_default"
ENSURE_FUNCTION = "audit_ensure_partitions(integer)"
# The listed classes get a leaf each with their actions; OTHER is each month's DEFAULT leaf.
LISTED_CLASSES = (retention.MONEY, retention.ERRORS, retention.ACCESS)
LEAF_NAME = re.compile(rf"{TABLE}_y(\d{{4}})m(\d{{2}})_({'|'.join(retention.CLASSES)})")
# A DETACH waits for the month's readers; past this it gives up instead of making every new
# query of the trail queue behind it.
LOCK_TIMEOUT = "5s"


class PartitionError(Exception):
    """The partition operation cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class Partition:
    """One leaf: a retention class's rows of one UTC month."""

    table: str
    month: date
    retention_class: str
    attached: bool
    # pg_class.reltuples: None until the table was first analysed.
    rows_estimate: int | None


def month_table(month: date) -> str:
    return f"{TABLE}_y{month:%Y}m{month:%m}"


def leaf_table(month: date, retention_class: str) -> str:
    if retention_class not in retention.CLASSES:
        raise PartitionError(f"unknown retention class {retention_class!r}")
    return f"{month_table(month)}_{retention_class}"


def _on_postgresql(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def list_partitions(*, using: str = DEFAULT_DB_ALIAS) -> list[Partition]:
    """Every leaf of the trail, attached or detached (kept until dropped), by month and class."""
    if not _on_postgresql(using):
        return []
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples,"
            "   EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)"
            " FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            "   AND c.relname LIKE %s",
            [TABLE.replace("_", r"\_") + r"\_y%"],
        )
        rows = cursor.fetchall()
    found = []
    for name, reltuples, attached in rows:
        match = LEAF_NAME.fullmatch(name)
        if match is None:
            continue
        year, month, retention_class = match.groups()
        found.append(
            Partition(
                table=name,
                month=date(int(year), int(month), 1),
                retention_class=retention_class,
                attached=attached,
                rows_estimate=None if reltuples < 0 else int(reltuples),
            )
        )
    order = {name: index for index, name in enumerate(retention.CLASSES)}
    return sorted(found, key=lambda p: (p.month, order[p.retention_class]))


def ensure_partitions(months_ahead: int, *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Create the months from this UTC month to `months_ahead` later that are missing (and any
    month with rows in the DEFAULT partition, moving them in); the tables created, in order.

    Runs as the application role: through the owner's SECURITY DEFINER function only.
    """
    if not isinstance(months_ahead, int) or not 0 <= months_ahead <= 120:
        raise PartitionError("months_ahead must be a whole number from 0 to 120")
    if not _on_postgresql(using):
        return []
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT name FROM audit_ensure_partitions(%s) AS name", [months_ahead])
        return [name for (name,) in cursor.fetchall()]


def default_rows(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """How many rows sit in the DEFAULT month partition (dated in no created month)."""
    if not _on_postgresql(using):
        return 0
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DEFAULT_PARTITION}")  # noqa: S608 (a constant)
        return int(cursor.fetchone()[0])


def months_ahead(*, today: date, using: str = DEFAULT_DB_ALIAS) -> int | None:
    """How many months after `today`'s are attached, without a gap (None: not even today's)."""
    attached = {p.month for p in list_partitions(using=using) if p.attached}
    month, count = retention.month_start(today), -1
    while month in attached:
        month, count = retention.next_month(month), count + 1
    return None if count < 0 else count


def detach_partition(month: date, retention_class: str, *, using: str = DEFAULT_DB_ALIAS) -> str:
    """Detach one class's month from the trail, as the owner; the detached table's name.

    The table keeps its rows, both append-only triggers and no grants for the application role;
    it stays until `drop_detached` (after it was archived). Not CONCURRENTLY: PostgreSQL allows
    that only where the parent has no DEFAULT partition, and every month has one (`other`). The
    lock is the month table's, not the whole trail's, and is given up after LOCK_TIMEOUT.
    """
    if not _on_postgresql(using):
        raise PartitionError("SQLite keeps the audit trail in one table: nothing to detach")
    month = retention.month_start(month)
    leaf, parent = leaf_table(month, retention_class), month_table(month)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = %s", [LOCK_TIMEOUT])
        cursor.execute(
            "SELECT i.inhparent::regclass::text FROM pg_inherits i"
            " WHERE i.inhrelid = to_regclass(%s)",
            [leaf],
        )
        row = cursor.fetchone()
        if row is None or row[0] != parent:
            raise PartitionError(f"{leaf} is not an attached partition of {parent}")
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {leaf}")
        cursor.execute("SELECT audit_guard_detached(%s::regclass)", [leaf])
    return leaf


def drop_detached(table: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Drop a detached audit leaf, as its owner: the end of its retention, once archived.

    Refuses anything else: a leaf still attached, a table that is not an audit leaf.
    """
    if not _on_postgresql(using):
        raise PartitionError("SQLite keeps the audit trail in one table: nothing to drop")
    if not LEAF_NAME.fullmatch(table):
        raise PartitionError(f"{table!r} is not a partition of the audit trail")
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = %s", [LOCK_TIMEOUT])
        cursor.execute(
            "SELECT c.relkind, pg_has_role(current_user, c.relowner, 'USAGE')"
            " FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = %s",
            [table],
        )
        row = cursor.fetchone()
        if row is None:
            raise PartitionError(f"{table} does not exist")
        relkind, owns = row
        if not owns:
            raise PartitionError(f"only the owner of {table} may drop it")
        # Locked before looking again, so that it cannot be attached between the check and the DROP.
        cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass)", [table]
        )
        (attached,) = cursor.fetchone()
        if attached:
            raise PartitionError(f"{table} is still attached to the audit trail: detach it first")
        if relkind != "r":
            raise PartitionError(f"{table} is not a detached audit partition")
        cursor.execute(f'DROP TABLE "{table}"')


# --- the database objects (migration 0007) ------------------------------------------------------

# Statement-level, so one per table: PostgreSQL clones row triggers onto partitions, not these.
# It binds the owner and every role below; a superuser may switch any trigger off in any case
# (and the row trigger with it), so it is let through here, and the hash chain is what shows a
# trail emptied and refilled by one (audit.chain, tests/audit/test_chain_postgres.py).
_TRUNCATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TABLE}_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""  # noqa: S608 (constants of this module only)

# Internal helpers: the owner's, executable by nobody else (REVOKE below), called by the
# SECURITY DEFINER function and the migration.
_HELPERS = f"""
-- The TRUNCATE trigger on one table of the trail, firing even under session_replication_role.
CREATE OR REPLACE FUNCTION audit_guard(rel regclass) RETURNS void AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse_truncate()', rel);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER {TABLE}_no_truncate', rel);
END;
$$ LANGUAGE plpgsql;

-- A new partition gets the business grants through the owner's default privileges: every role
-- holding anything on the trail gets SELECT on it and nothing else (INSERT and reads go
-- through the parent, which checks the parent's grants).
CREATE OR REPLACE FUNCTION audit_narrow(rel regclass, readable boolean) RETURNS void AS $$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT quote_ident(pg_get_userbyid(a.grantee))
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid IN (rel, '{TABLE}'::regclass) AND a.grantee NOT IN (0, c.relowner)
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', rel, grantee);
    END LOOP;
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', rel);
    IF readable THEN
        FOR grantee IN
            SELECT DISTINCT quote_ident(pg_get_userbyid(a.grantee))
            FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = '{TABLE}'::regclass AND a.grantee NOT IN (0, c.relowner)
        LOOP
            EXECUTE format('GRANT SELECT ON %s TO %s', rel, grantee);
        END LOOP;
    END IF;
END;
$$ LANGUAGE plpgsql;

-- A leaf just detached: PostgreSQL dropped the row trigger it had from the parent.
CREATE OR REPLACE FUNCTION audit_guard_detached(rel regclass) RETURNS void AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON %s'
                   ' FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse_change()', rel);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER {TABLE}_append_only', rel);
    PERFORM audit_narrow(rel, false);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_create_default() RETURNS void AS $$
BEGIN
    CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT;
    PERFORM audit_guard('{DEFAULT_PARTITION}'::regclass);
    PERFORM audit_narrow('{DEFAULT_PARTITION}'::regclass, true);
END;
$$ LANGUAGE plpgsql;

-- One month with its class leaves, built apart and then attached: ATTACH takes a lock on the
-- parent that lets reads and writes go on (CREATE ... PARTITION OF would take one that stops
-- them all). The month table is returned first, then its leaves.
CREATE OR REPLACE FUNCTION audit_create_month(m date) RETURNS SETOF text AS $$
DECLARE
    month_name text := format('{TABLE}_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
    low timestamptz := date_trunc('month', m::timestamp) AT TIME ZONE 'UTC';
    high timestamptz := (date_trunc('month', m::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
    leaf text;
    cls record;
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE {TABLE}) PARTITION BY LIST (action)', month_name);
    RETURN NEXT month_name;
    FOR cls IN SELECT * FROM (VALUES {{classes}}) AS v(name, actions) LOOP
        leaf := month_name || '_' || cls.name;
        IF cls.actions IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', leaf, month_name);
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%s)', leaf, month_name,
                (SELECT string_agg(quote_literal(a), ', ' ORDER BY a) FROM unnest(cls.actions) a));
        END IF;
        RETURN NEXT leaf;
    END LOOP;
    EXECUTE format('ALTER TABLE {TABLE} ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   month_name, low, high);
    PERFORM audit_guard(month_name::regclass);
    PERFORM audit_narrow(month_name::regclass, true);
    FOR leaf IN SELECT month_name || '_' || v FROM unnest(ARRAY[{{class_names}}]) v LOOP
        PERFORM audit_guard(leaf::regclass);
        PERFORM audit_narrow(leaf::regclass, true);
    END LOOP;
END;
$$ LANGUAGE plpgsql;

REVOKE ALL ON FUNCTION audit_guard(regclass), audit_narrow(regclass, boolean),
    audit_guard_detached(regclass), audit_create_default(), audit_create_month(date) FROM PUBLIC;
"""  # noqa: S608 (constants of this module only)

# What the application role may call (db_roles grants EXECUTE on it, nothing else).
_ENSURE = f"""
CREATE OR REPLACE FUNCTION audit_ensure_partitions(months_ahead integer) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
-- The trail's schema, where the tables are created (the first listed); pg_catalog is searched
-- before it anyway, pg_temp last so that nobody's temporary table can stand in for ours.
SET search_path = {{schema}}, pg_temp
-- Waiting longer for the locks would make every query of the trail queue behind this one.
SET lock_timeout = '3s'
AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    wanted date[];
    m date;
    moving boolean;
    expected bigint;
    moved bigint;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be from 0 to 120, not %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Two runs at once would both try to create the same month.
    PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partitions'));
    SELECT array_agg(x ORDER BY x) INTO wanted FROM (
        SELECT (this_month + make_interval(months => i))::date
        FROM generate_series(0, months_ahead) i
        UNION
        SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date FROM {DEFAULT_PARTITION}
    ) AS s(x)
    WHERE to_regclass(format('{TABLE}_y%sm%s', to_char(x, 'YYYY'), to_char(x, 'MM'))) IS NULL;
    IF wanted IS NULL THEN
        RETURN;
    END IF;
    -- PostgreSQL refuses a month while the DEFAULT holds rows of it: those rows are moved.
    moving := EXISTS (
        SELECT 1 FROM {DEFAULT_PARTITION}
        WHERE date_trunc('month', created_at AT TIME ZONE 'UTC')::date = ANY (wanted));
    IF moving THEN
        ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT_PARTITION};
        ALTER TABLE {DEFAULT_PARTITION} RENAME TO {DEFAULT_PARTITION}_moving;
    END IF;
    FOREACH m IN ARRAY wanted LOOP
        RETURN QUERY SELECT audit_create_month(m);
    END LOOP;
    IF moving THEN
        PERFORM audit_create_default();
        SELECT count(*) INTO expected FROM {DEFAULT_PARTITION}_moving;
        -- Same ids and content: the hash chain's seals still match (audit.chain).
        INSERT INTO {TABLE} SELECT * FROM {DEFAULT_PARTITION}_moving;
        GET DIAGNOSTICS moved = ROW_COUNT;
        IF moved <> expected THEN
            RAISE EXCEPTION 'moved % of % rows out of the DEFAULT partition', moved, expected;
        END IF;
        DROP TABLE {DEFAULT_PARTITION}_moving;
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION {ENSURE_FUNCTION} FROM PUBLIC;
"""  # noqa: S608 (constants of this module only)

DROP_FUNCTIONS = f"""
DROP FUNCTION IF EXISTS {ENSURE_FUNCTION};
DROP FUNCTION IF EXISTS audit_create_month(date);
DROP FUNCTION IF EXISTS audit_create_default();
DROP FUNCTION IF EXISTS audit_guard_detached(regclass);
DROP FUNCTION IF EXISTS audit_narrow(regclass, boolean);
DROP FUNCTION IF EXISTS audit_guard(regclass);
DROP FUNCTION IF EXISTS {TABLE}_refuse_truncate();
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def functions_sql(*, class_actions: dict[str, frozenset[str]], schema: str) -> str:
    """The functions that build the layout, with the classes' actions as of the migration that
    installs them: partition bounds are fixed at creation, so a change of class is a migration
    (audit.retention)."""
    classes = ", ".join(
        f"({_literal(name)}, "
        + (
            f"ARRAY[{', '.join(_literal(a) for a in sorted(class_actions[name]))}]::text[]"
            if name in class_actions
            else "NULL::text[]"
        )
        + ")"
        for name in (*LISTED_CLASSES, retention.OTHER)
    )
    class_names = ", ".join(_literal(name) for name in (*LISTED_CLASSES, retention.OTHER))
    quoted_schema = '"' + schema.replace('"', '""') + '"'
    return (
        _TRUNCATE_FUNCTION
        + _HELPERS.replace("{classes}", classes).replace("{class_names}", class_names)
        + _ENSURE.replace("{schema}", quoted_schema)
    )
