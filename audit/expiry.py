"""Retention applied: old monthly partitions leave the database through a verified archive.

For each attached leaf partition (one retention class of one UTC month, audit.partitions) whose
month `retention.is_due`, in this order, each step recorded on its AuditArchive and audited
(AUDIT_ARCHIVED, metadata `step`):

1. archive the unit from the leaf itself (audit.archive.archive_month), unless an earlier run did;
2. verify the archive against its manifest and the seals; a mismatch stops this unit;
3. detach the partition: the rows leave the audit table but stay in a table of their own;
4. check the detached table against the manifest (count and id range: a row that arrived
   between 1 and 3, a spooled failure row of that month, would otherwise be lost), verify the
   archive once more, and drop the detached table — unless `keep_detached`.

Rows never leave by DELETE. A run that stopped half-way (a crash, `--keep-detached`) is taken on
from where it stopped by the next: a unit that is archived is not archived again, a detached
table whose archive verifies is dropped. DDL: run as the owner of the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from audit import chain, retention
from audit.archive import (
    ArchiveError,
    archive_month,
    check_table_name,
    mark_verified,
    record_step,
    unit_key,
    verify_archive,
)
from audit.models import AuditArchive, Severity
from audit.partitions import PartitionError


class PartitionInfo(Protocol):
    table: str
    month: date
    retention_class: str
    attached: bool


class Partitions(Protocol):
    """What retention needs of audit.partitions (its API, as that module defines it)."""

    def list_partitions(self) -> Sequence[PartitionInfo]: ...

    def detach_partition(self, month: date, retention_class: str) -> str: ...

    def drop_detached(self, table: str) -> None: ...


def default_partitions() -> Partitions:
    from audit import partitions

    # The module is the API; its functions take `using` too, which retention leaves at default.
    module: Any = partitions
    return module


@dataclass(frozen=True)
class Unit:
    retention_class: str
    month: date
    table: str
    attached: bool

    @property
    def key(self) -> str:
        return unit_key(self.month, self.retention_class)


def due_units(today: date, *, partitions: Partitions, using: str) -> list[Unit]:
    """The leaves retention would act on today: attached and due, or detached and not dropped."""
    units = [
        Unit(p.retention_class, p.month, p.table, True)
        for p in partitions.list_partitions()
        if p.attached and retention.is_due(p.retention_class, p.month, today=today)
    ]
    left = AuditArchive.objects.using(using).filter(detached_at__isnull=False, dropped_at=None)
    units += [Unit(a.retention_class, a.month, a.detached_table, False) for a in left]
    return sorted(units, key=lambda u: (u.month, u.retention_class))


def apply_retention(
    *,
    today: date,
    dry_run: bool = False,
    keep_detached: bool = False,
    partitions: Partitions | None = None,
    say: Callable[[str], None] = print,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Take every due unit as far as it may go; how many units stopped on a problem."""
    partitions = partitions or default_partitions()
    failed = 0
    units = due_units(today, partitions=partitions, using=using)
    if not units:
        say(f"nothing is due on {today}")
    for unit in units:
        if dry_run:
            what = "archive, verify, detach" if unit.attached else "verify"
            drop = "" if keep_detached else ", drop"
            say(f"due: {unit.key} ({unit.table}): would {what}{drop}")
            continue
        try:
            _take(unit, partitions=partitions, keep_detached=keep_detached, say=say, using=using)
        except (ArchiveError, PartitionError) as exc:
            failed += 1
            say(f"STOPPED {unit.key}: {exc}")
    return failed


def _take(
    unit: Unit,
    *,
    partitions: Partitions,
    keep_detached: bool,
    say: Callable[[str], None],
    using: str,
) -> None:
    record = AuditArchive.objects.using(using).filter(key=unit.key).first()
    if record is None:
        # Read from the leaf itself: exactly the rows that its detach and drop take away.
        manifest = archive_month(
            unit.month, unit.retention_class, source_table=unit.table, using=using
        )
        say(f"archived {unit.key}: {manifest.row_count} rows")
        record = AuditArchive.objects.using(using).get(key=unit.key)
    _verify(record, using=using)
    say(f"verified {unit.key}")
    if record.detached_at is None:
        # Whatever reached the month since it was archived gets its seal first: a row that left
        # unsealed would be missing from the trail without the chain knowing it ever existed.
        chain.seal_pending(using=using, wait=True, budget_seconds=600)
        table = partitions.detach_partition(unit.month, unit.retention_class)
        with transaction.atomic(using=using):
            record.detached_at, record.detached_table = timezone.now(), table
            record.save(using=using, update_fields=["detached_at", "detached_table"])
            record_step(
                record, "detached", f"Audit partition detached: {table}", extra={"table": table}
            )
        say(f"detached {table}")
    if keep_detached:
        say(f"kept {record.detached_table} (--keep-detached)")
        return
    _matches_manifest(record, using=using)
    _verify(record, using=using)
    partitions.drop_detached(record.detached_table)
    with transaction.atomic(using=using):
        record.dropped_at = timezone.now()
        record.save(using=using, update_fields=["dropped_at"])
        record_step(
            record,
            "dropped",
            f"Audit partition dropped: {record.detached_table}; its rows are in {record.key}",
            extra={"table": record.detached_table},
        )
    say(f"dropped {record.detached_table}")


def _verify(record: AuditArchive, *, using: str) -> None:
    check = verify_archive(record.key, using=using)
    mark_verified(record, check, using=using)
    if not check.ok:
        raise ArchiveError(check.problems[0])


def _matches_manifest(record: AuditArchive, *, using: str) -> None:
    """The detached table holds exactly the archived rows (count and id range)."""
    conn = connections[using]
    table = conn.ops.quote_name(check_table_name(record.detached_table))
    with conn.cursor() as cursor:
        # A checked identifier, no values.
        cursor.execute(f"SELECT COUNT(*), MIN(id), MAX(id) FROM {table}")  # noqa: S608
        count, low, high = cursor.fetchone()
    if (count, low, high) != (record.row_count, record.first_id, record.last_id):
        with transaction.atomic(using=using):
            record_step(
                record,
                "drop_refused",
                f"Audit partition {record.detached_table} differs from its archive, kept",
                severity=Severity.ERROR,
                extra={"tableRows": count, "table": record.detached_table},
            )
        raise ArchiveError(
            f"{record.detached_table} holds {count} rows ({low}-{high}), the archive "
            f"{record.row_count} ({record.first_id}-{record.last_id}): kept; archive it again "
            f"with audit_archive --month {record.month:%Y-%m} --class {record.retention_class} "
            f"--source-table {record.detached_table} --replace"
        )
