"""Loading an archive back for an audit: into a table of its own, never into the trail.

The restore table (`audit_restored` unless named) has the trail's columns plus `archive_key`,
so an auditor queries old rows with plain SQL next to the live ones. The archive is verified
first (audit.archive.verify_archive) and refused if anything differs. Loading the same archive
again replaces its rows in the restore table in one transaction: the table then holds exactly
what the archive holds, however often it was restored. Creating the table is DDL: run as the
owner of the tables (README, "Retention and archives").
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Field

from audit.archive import (
    COLUMNS,
    ArchiveError,
    archived_lines,
    check_table_name,
    record_step,
    verify_archive,
)
from audit.models import AuditArchive, AuditLog

DEFAULT_TABLE = "audit_restored"
KEY_COLUMN = "archive_key"
INSERT_CHUNK = 500


def _refuse_live_tables(table: str, *, using: str) -> None:
    conn = connections[using]
    with conn.cursor() as cursor:
        model_tables = set(conn.introspection.django_table_names(include_views=False))
        existing = set(conn.introspection.table_names(cursor))
    if table.startswith(("audit_auditlog", "audit_auditseal")) or table in model_tables:
        raise ArchiveError(f"{table} is a table of the application: restore into one of its own")
    if table in existing:
        with conn.cursor() as cursor:
            described = {c.name for c in conn.introspection.get_table_description(cursor, table)}
        if described != {*COLUMNS, KEY_COLUMN}:
            raise ArchiveError(f"{table} exists and is not a restore table (its columns differ)")


def _create_table(table: str, *, using: str) -> None:
    conn = connections[using]
    qn = conn.ops.quote_name
    # Only for the column types: not entered, since SQLite's editor refuses to run in a
    # transaction, and this one must (the table and its rows come together or not at all).
    editor = conn.schema_editor()
    columns = []
    for model_field in AuditLog._meta.concrete_fields:
        if model_field.primary_key:
            columns.append(f"{qn('id')} bigint NOT NULL PRIMARY KEY")
            continue
        definition, _ = editor.column_sql(AuditLog, model_field, include_default=False)
        columns.append(f"{qn(cast(str, model_field.column))} {definition}")
    columns.append(f"{qn(KEY_COLUMN)} varchar(255) NOT NULL")
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {qn(table)} ({', '.join(columns)})")
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {qn(table + '_key_idx')} ON {qn(table)} ({qn(KEY_COLUMN)})"
        )


def _db_values(values: dict[str, Any], key: str, *, using: str) -> list[Any]:
    conn = connections[using]
    params = []
    for column in COLUMNS:
        model_field = cast(Field, AuditLog._meta.get_field(column))
        value = model_field.to_python(values[column])
        params.append(model_field.get_db_prep_save(value, conn))
    return [*params, key]


def restore_archive(key: str, *, into: str = DEFAULT_TABLE, using: str = DEFAULT_DB_ALIAS) -> int:
    """Verify the archive, then load its rows into `into`; how many rows the table now has of it."""
    table = check_table_name(into)
    _refuse_live_tables(table, using=using)
    check = verify_archive(key, using=using)
    if not check.ok:
        raise ArchiveError(f"{key} does not verify, nothing restored: {check.problems[0]}")
    conn = connections[using]
    qn = conn.ops.quote_name
    names = ", ".join(qn(c) for c in (*COLUMNS, KEY_COLUMN))
    row_marks = "(" + ", ".join(["%s"] * (len(COLUMNS) + 1)) + ")"
    loaded = 0
    with transaction.atomic(using=using):
        _create_table(table, using=using)
        with conn.cursor() as cursor:
            # The restore table, not the trail: it holds copies, replaced on each restore.
            cursor.execute(f"DELETE FROM {qn(table)} WHERE {qn(KEY_COLUMN)} = %s", [key])  # noqa: S608
            chunk: list[list[Any]] = []
            read = hashlib.sha256()
            for line in archived_lines(key, digest=read):
                chunk.append(_db_values(json.loads(line), key, using=using))
                if len(chunk) == INSERT_CHUNK:
                    loaded += _insert(cursor, table, names, row_marks, chunk, conn)
                    chunk = []
            if chunk:
                loaded += _insert(cursor, table, names, row_marks, chunk, conn)
            # The file could have been replaced since it verified: then nothing stays loaded.
            if read.hexdigest() != check.jsonl_sha256 or loaded != check.rows:
                raise ArchiveError(f"{key} changed while it was restored, nothing restored")
        record = AuditArchive.objects.using(using).filter(key=key).first()
        if record is not None:
            record_step(
                record,
                "restored",
                f"Audit archive restored into {table}: {key}, {loaded} rows",
                extra={"table": table},
            )
    return loaded


def _insert(cursor: Any, table: str, names: str, row_marks: str, chunk: list, conn: Any) -> int:
    sql = f"INSERT INTO {conn.ops.quote_name(table)} ({names}) VALUES "  # noqa: S608
    cursor.execute(sql + ", ".join([row_marks] * len(chunk)), [v for row in chunk for v in row])
    return len(chunk)
