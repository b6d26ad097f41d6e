"""The audit trail becomes monthly partitions split by retention class (PostgreSQL only).

The table is converted in place, under an ACCESS EXCLUSIVE lock for the whole migration (writes
wait; the time grows with the rows copied): a new partitioned `audit_auditlog` is made beside
the old one, its months created from the oldest row's to AUDIT_PARTITION_MONTHS_AHEAD after this
one, every row copied with its id, the id sequence set to where the old one stood (so no id is
ever drawn twice), then the old table dropped. The layout and the functions that keep it:
audit/partitions.py.

Keys: PostgreSQL requires every unique index of a partitioned table to hold the partition keys
of every level, so in the database the primary key is (id, created_at, action) and the spool
index (spool_id, created_at, action). Django keeps `id` as the model's primary key: ids still come
from one sequence, so they stay unique; the spool copy of a row carries the row's own created_at
and action (audit.spool), so the index still refuses a second insert of it.

Irreversible: going back would mean putting every partition, detached ones included, back in
one table, which is a decision for a person with the rows in front of them, not a migration.
SQLite keeps its one table and this migration does nothing there.
"""

from datetime import UTC, date

from django.conf import settings
from django.db import migrations
from django.utils import timezone

from audit import append_only, partitions, retention

TABLE = "audit_auditlog"
OLD = "audit_auditlog_unpartitioned"

# The classes' actions as they are at this migration (audit/retention.py): partition bounds are
# fixed when a month is created, so a later change of class comes with its own migration.
CLASS_ACTIONS = {
    "money": frozenset(
        {
            "INVOICE_GENERATED",
            "INVOICE_SENT",
            "INVOICE_UPDATED",
            "INVOICE_CANCELLED",
            "PAYMENT_RECEIVED",
            "STUDENT_CREATED",
            "STUDENT_UPDATED",
            "LEAD_CONVERTED",
            "LEAD_TO_STUDENT_CONVERSION",
            "BATCH_CREATED",
            "BATCH_UPDATED",
            "BATCH_DELETED",
            "RECONCILIATION",
            "AUDIT_CHECKPOINT",
            "AUDIT_CHAIN_BROKEN",
            "DATA_MIGRATED",
        }
    ),
    "errors": frozenset({"SYSTEM_ERROR", "DATABASE_ERROR", "API_ERROR", "EMAIL_FAILED"}),
    "access": frozenset({"LOGIN", "LOGOUT", "LOGIN_FAILED", "DATA_ACCESSED"}),
}


def _months(oldest: date, last: date) -> list[date]:
    months, month = [], retention.month_start(oldest)
    while month <= last:
        months.append(month)
        month = retention.next_month(month)
    return months


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("audit", "AuditLog")

    def run(sql: str, params=None) -> None:
        # params=None: the functions' bodies hold format() placeholders that are not ours.
        schema_editor.execute(sql, params=params)

    run(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT current_schema(), min(created_at), count(*) FROM {TABLE}")  # noqa: S608
        schema, oldest, count = cursor.fetchone()

    # Names free for the new table: index and sequence names are the schema's, not the table's.
    for index in model._meta.indexes:
        run(f'DROP INDEX "{index.name}"')
    run('DROP INDEX "audit_spool_id_uniq"')
    run(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    run(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
    run(f"ALTER SEQUENCE {TABLE}_id_seq RENAME TO {OLD}_id_seq")

    run(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY"
        " INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (created_at)"
    )
    # Indexes made on the parent are made on every partition, present and future.
    run(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, created_at, action)")
    for index in model._meta.indexes:
        schema_editor.add_index(model, index)
    run(
        f'CREATE UNIQUE INDEX "audit_spool_id_uniq" ON {TABLE} (spool_id, created_at, action)'
        " WHERE spool_id IS NOT NULL"
    )
    # The row trigger of 0002 (its function is still there): cloned onto every partition.
    run(append_only.CREATE.format(table=TABLE))
    run(partitions.functions_sql(class_actions=CLASS_ACTIONS, schema=schema))
    run(f"SELECT audit_guard('{TABLE}'::regclass)")
    run("SELECT audit_create_default()")

    today = timezone.now().astimezone(UTC).date()
    last = retention.add_months(retention.month_start(today), settings.AUDIT_PARTITION_MONTHS_AHEAD)
    first = oldest.astimezone(UTC).date() if oldest is not None else today
    for month in _months(min(first, today), last):
        run("SELECT audit_create_month(%s)", [month])

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
        if cursor.rowcount != count:
            raise RuntimeError(f"copied {cursor.rowcount} of {count} audit rows")
        cursor.execute(f"SELECT last_value, is_called FROM {OLD}_id_seq")  # noqa: S608
        last_value, is_called = cursor.fetchone()
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)",
            [TABLE, last_value, is_called],
        )
    run(f"DROP TABLE {OLD}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_chain")]

    operations = [migrations.RunPython(partition)]
