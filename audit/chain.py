"""Tamper evidence for the audit trail: a hash chain over the committed rows, and its checks.

Writers never touch the chain. A sealer (beat every AUDIT_SEAL_SECONDS, and `audit_verify` before
it checks) takes the rows that have committed since it last looked and appends one `AuditSeal`
per row, in the order it finds them:

    hash = sha256(prev_hash "\\n" seq "\\n" sealed_at "\\n" canonical(row))

so the chain is in commit order (as the sealer saw it), not id order, and a money transaction
never waits for it: the only lock is the sealer's own (its state row, `FOR UPDATE`), held for
one batch. A row that rolled back never becomes visible and is never sealed; a row written
through the independent connection is sealed like any other.

Finding every committed row without rescanning the whole table: ids are drawn from one sequence
when a row is inserted, so a row with a lower id can commit after one with a higher id, but
only while the transaction that drew it is still running. The sealer keeps a `horizon`: below it
every committed row is sealed. At one run it notes the highest visible id (`mark_id`); at the
next it notes the first transaction id not yet started (`mark_xid`, a run later so that even a
transaction between drawing its id and getting its transaction id is older); once the oldest
running transaction is younger than `mark_xid`, every row up to `mark_id` has committed or never
will, and the horizon moves there. Each run looks at the unsealed rows above the horizon only.
On SQLite a writer holds the database's write lock until it commits, so once the sealer holds
it, every row it can see is final and the horizon follows at once.

The canonical content of a row is every stored column (CANONICAL_COLUMNS[format]) as JSON with
sorted keys and no spaces, UTF-8: datetimes in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UUIDs and
decimals as strings, `metadata` as the JSON it holds. A column added to the trail later gets a
new format number; old seals keep being checked against the columns they were made with.

`verify` walks the seals in `seq` order in chunks (memory does not grow with the table) and stops
at the first row that was changed (its hash differs), removed (its seal names a missing row),
or whose seal does not follow the one before (forged, reordered, a seal removed). It also checks
the heads that earlier checkpoint rows recorded, a witnessed head given from outside
(`--checkpoint SEQ:HASH`), and that no committed row below the horizon lacks a seal (a row
inserted behind the sealer's back). What the chain proves and what it cannot: README, "Tamper
evidence".
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from audit import timeline
from audit.models import (
    Action,
    AuditArchive,
    AuditLog,
    AuditSeal,
    ChainState,
    ChainVerification,
    Severity,
)

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
SEAL_BATCH = 1000
VERIFY_CHUNK = 2000
UNSEALED_RANGE = 100_000
SUM_MODULUS = 2**256
FORMAT = 1
# Every stored column of AuditLog, per format. A test fails when the model has a column the
# newest format leaves out: add a format then, never change an existing one.
CANONICAL_COLUMNS: dict[int, tuple[str, ...]] = {
    1: (
        "id",
        "action",
        "severity",
        "description",
        "source",
        "user_id",
        "user_email",
        "user_name",
        "user_role",
        "ip_address",
        "user_agent",
        "request_path",
        "request_method",
        "request_id",
        "entity_type",
        "entity_id",
        "metadata",
        "error_message",
        "error_stack",
        "created_at",
        "spool_id",
    ),
}

BEAT = "beat"
COMMAND = "command"


# --- canonical content and hashes ---------------------------------------------------------------


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"not canonical: {type(value).__name__}")


def canonical(values: dict[str, Any]) -> bytes:
    """The row's columns as stable JSON bytes (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode()


def seal_hash(*, prev_hash: str, seq: int, sealed_at: datetime, content: bytes) -> str:
    digest = hashlib.sha256(f"{prev_hash}\n{seq}\n{_stamp(sealed_at)}\n".encode())
    digest.update(content)
    return digest.hexdigest()


def seal_term(audit_id: int, seq: int, digest: str) -> int:
    """One seal's share of a seal sum: the sha256 of its `id:seq:hash` line, as a number.

    Archives record the sum of their rows' terms (audit.archive); adding up is order-free, so
    the verifier can total the seals of archived rows in chain order and compare.
    """
    return int(hashlib.sha256(f"{audit_id}:{seq}:{digest}\n".encode()).hexdigest(), 16)


def _row_values(rows: Iterator[tuple], columns: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield dict(zip(columns, row, strict=True))


def _rows_by_id(ids: list[int], *, using: str, fmt: int) -> dict[int, dict[str, Any]]:
    columns = CANONICAL_COLUMNS[fmt]
    query = AuditLog.objects.using(using).filter(pk__in=ids).order_by().values_list(*columns)
    # Fetched whole (a chunk at a time), not through a server-side cursor: one round trip.
    return {values["id"]: values for values in _row_values(iter(query), columns)}


# --- sealing ------------------------------------------------------------------------------------


def _locked_state(*, using: str, wait: bool) -> ChainState | None:
    """The sealer's state row, locked until the end of the transaction; None if another holds it."""
    ChainState.objects.using(using).bulk_create([ChainState(pk=1)], ignore_conflicts=True)
    if connections[using].vendor == "postgresql":
        return (
            ChainState.objects.using(using)
            .select_for_update(skip_locked=not wait)
            .filter(pk=1)
            .first()
        )
    # SQLite: the first write takes the database's write lock, which every writer needs.
    ChainState.objects.using(using).filter(pk=1).update(sealed_at=timezone.now())
    return ChainState.objects.using(using).get(pk=1)


def _advance_marks(state: ChainState, *, using: str) -> int | None:
    """Move the marks one step; the id the horizon may reach once this run has sealed."""
    conn = connections[using]
    with conn.cursor() as cursor:
        if conn.vendor != "postgresql":
            cursor.execute("SELECT MAX(id) FROM audit_auditlog")
            return cursor.fetchone()[0] or 0
        cursor.execute(
            "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint,"
            " (SELECT MAX(id) FROM audit_auditlog) FROM pg_current_snapshot() s"
        )
        xmin, xmax, highest = cursor.fetchone()
    highest = highest or 0
    if state.mark_id is None:
        state.mark_id = highest
    elif state.mark_xid is None:
        state.mark_xid = xmax
    elif xmin >= state.mark_xid:
        # Every transaction that drew an id up to mark_id has ended, before this statement's
        # snapshot: the read of the rows that follows sees every one of them that committed.
        reached = state.mark_id
        state.mark_id, state.mark_xid = highest, None
        return reached
    return None


@dataclass
class SealRun:
    sealed: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    horizon: int = 0
    skipped: bool = False


def head(*, using: str = DEFAULT_DB_ALIAS) -> tuple[int, str, datetime | None]:
    last = AuditSeal.objects.using(using).order_by("-seq").values_list("seq", "hash", "sealed_at")
    first = last.first()
    return first if first else (0, GENESIS, None)


def _select(rows: Any, limit: int) -> list[dict[str, Any]]:
    columns = CANONICAL_COLUMNS[FORMAT]
    return list(_row_values(iter(rows.order_by("pk").values_list(*columns)[:limit]), columns))


def _insert_seals(
    ids: list[int],
    hashes: list[str],
    prevs: list[str],
    first_seq: int,
    sealed_at: datetime,
    *,
    using: str,
) -> None:
    if not ids:
        return
    conn = connections[using]
    if conn.vendor != "postgresql":
        AuditSeal.objects.using(using).bulk_create(
            AuditSeal(seq=first_seq + i, audit_id=a, hash=h, prev_hash=p, sealed_at=sealed_at)
            for i, (a, h, p) in enumerate(zip(ids, hashes, prevs, strict=True))
        )
        return
    # Three arrays and two constants: a third of what bulk_create spends per row on PostgreSQL.
    with conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditseal (seq, audit_id, hash, prev_hash, sealed_at, format)"
            " SELECT %s + t.o - 1, t.a, t.h, t.p, %s, %s"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS t(a, h, p, o)",
            [first_seq, sealed_at, FORMAT, ids, hashes, prevs],
        )


def seal_batch(*, using: str = DEFAULT_DB_ALIAS, wait: bool = True, late: bool = True) -> SealRun:
    """One run of the sealer in one transaction: up to SEAL_BATCH rows.

    Rows above the highest id sealed so far are new and simply taken in id order. With `late`,
    the run first looks for rows that committed late, between the horizon and that id (an
    anti-join over those few seconds of rows), and only such a run moves the horizon: a backlog
    is sealed by one late run and then new-row runs, not by rescanning what was just sealed.
    """
    run = SealRun()
    with transaction.atomic(using=using):
        state = _locked_state(using=using, wait=wait)
        if state is None:
            run.skipped = True
            return run
        reachable = _advance_marks(state, using=using) if late else None
        seals_so_far = AuditSeal.objects.using(using)
        scanned = seals_so_far.aggregate(top=Max("audit_id"))["top"] or 0
        rows = AuditLog.objects.using(using)
        pending: list[dict[str, Any]] = []
        if late and scanned > state.horizon_id:
            sealed = seals_so_far.filter(audit_id=OuterRef("pk"))
            lagging = rows.filter(pk__gt=state.horizon_id, pk__lte=scanned)
            pending = _select(lagging.exclude(Exists(sealed)), SEAL_BATCH)
        # Every visible row up to `done` is sealed once this run commits.
        done = pending[-1]["id"] if len(pending) == SEAL_BATCH else None
        if done is None:
            new = _select(rows.filter(pk__gt=scanned), SEAL_BATCH - len(pending))
            if len(pending) + len(new) == SEAL_BATCH and new:
                done = new[-1]["id"]
            pending += new
        first_seq, prev, _ = head(using=using)
        first_seq += 1
        now = timezone.now()
        hashes, prevs = [], []
        for seq, values in enumerate(pending, start=first_seq):
            prevs.append(prev)
            prev = seal_hash(prev_hash=prev, seq=seq, sealed_at=now, content=canonical(values))
            hashes.append(prev)
        _insert_seals(
            [values["id"] for values in pending], hashes, prevs, first_seq, now, using=using
        )
        if reachable is not None:
            # A full batch may have left rows below `reachable` for the next run: the horizon
            # stops where this run's rows end, and later runs take it further as marks allow.
            state.horizon_id = max(state.horizon_id, min(reachable, done or reachable))
        if pending:
            state.sealed_at = now
        state.save(using=using)
        run.sealed, run.head_seq, run.head_hash = len(pending), first_seq + len(pending) - 1, prev
        run.horizon = state.horizon_id
    return run


def seal_pending(
    *, using: str = DEFAULT_DB_ALIAS, wait: bool = True, budget_seconds: float = 30.0
) -> int:
    """Seal every committed row not sealed yet (within the time budget); how many it sealed."""
    deadline = time.monotonic() + budget_seconds
    total, late = 0, True
    while True:
        run = seal_batch(using=using, wait=wait, late=late)
        total, late = total + run.sealed, False
        if run.skipped or run.sealed < SEAL_BATCH or time.monotonic() > deadline:
            return total


# --- verification -------------------------------------------------------------------------------


@dataclass
class Verification:
    intact: bool = True
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    first_broken_id: int | None = None
    problem: str = ""
    unsealed: list[int] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def broken(self, audit_id: int | None, problem: str) -> None:
        if self.intact:
            self.intact, self.first_broken_id, self.problem = False, audit_id, problem


def parse_checkpoint(raw: str) -> tuple[int | None, str]:
    """`SEQ:HASH` (what the digest and the checkpoint rows show) or a bare 64-hex head."""
    seq_text, _, digest = raw.strip().rpartition(":")
    digest = digest.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("a checkpoint is SEQ:HASH, the hash 64 hexadecimal digits")
    if not seq_text:
        return None, digest
    if not seq_text.isdigit() or not seq_text.isascii():
        raise ValueError("a checkpoint is SEQ:HASH, SEQ a positive number")
    return int(seq_text), digest


def _seal_chunks(*, using: str, start_seq: int) -> Iterator[list[tuple]]:
    after = start_seq - 1
    while True:
        chunk = list(
            AuditSeal.objects.using(using)
            .filter(seq__gt=after)
            .order_by("seq")
            .values_list("seq", "audit_id", "hash", "prev_hash", "sealed_at", "format")[
                :VERIFY_CHUNK
            ]
        )
        if not chunk:
            return
        yield chunk
        after = chunk[-1][0]


def _recorded_checkpoints(*, using: str) -> dict[int, str]:
    """The heads that AUDIT_CHECKPOINT rows witnessed, by seq (a few per day)."""
    heads: dict[int, str] = {}
    rows = AuditLog.objects.using(using).filter(action=Action.AUDIT_CHECKPOINT)
    for metadata in rows.values_list("metadata", flat=True).iterator():
        seq, digest = (metadata or {}).get("headSeq"), (metadata or {}).get("headHash")
        if isinstance(seq, int) and isinstance(digest, str):
            heads[seq] = digest
    return heads


def verify(
    *,
    since: datetime | None = None,
    checkpoint: tuple[int | None, str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
    seal_first: bool = True,
) -> Verification:
    started = time.perf_counter()
    result = Verification()
    if seal_first:
        seal_pending(using=using, wait=True, budget_seconds=600)
    seals = AuditSeal.objects.using(using)
    start_seq, prev = 1, GENESIS
    if since is not None:
        first = seals.filter(sealed_at__gte=since).order_by("seq").values_list("seq", flat=True)
        start_seq = first.first() or (head(using=using)[0] + 1)
        if start_seq > 1:
            before = seals.filter(seq=start_seq - 1).values_list("hash", flat=True).first()
            prev = before or ""
    witnessed = _recorded_checkpoints(using=using)
    archived = ArchivedRows.load(using=using)
    expected_seq = start_seq
    for chunk in _seal_chunks(using=using, start_seq=start_seq):
        by_format: dict[int, list[int]] = {}
        for seal in chunk:
            by_format.setdefault(seal[5], []).append(seal[1])
        rows: dict[int, dict[str, Any]] = {}
        for fmt, ids in by_format.items():
            if fmt not in CANONICAL_COLUMNS:
                continue
            rows.update(_rows_by_id(ids, using=using, fmt=fmt))
        for seq, audit_id, digest, prev_hash, sealed_at, fmt in chunk:
            if seq != expected_seq:
                result.broken(
                    audit_id, f"seals {expected_seq}-{seq - 1} are missing before seal {seq}"
                )
            elif prev_hash != prev:
                result.broken(audit_id, f"seal {seq} does not follow seal {seq - 1}")
            elif fmt not in CANONICAL_COLUMNS:
                result.broken(audit_id, f"seal {seq} has an unknown format {fmt}")
            elif audit_id not in rows and not archived.take(audit_id, seq, digest):
                result.broken(audit_id, f"row {audit_id} (seal {seq}) was removed")
            elif audit_id in rows and digest != seal_hash(
                prev_hash=prev, seq=seq, sealed_at=sealed_at, content=canonical(rows[audit_id])
            ):
                result.broken(
                    audit_id, f"row {audit_id} (seal {seq}) was changed, or its seal forged"
                )
            elif seq in witnessed and witnessed[seq] != digest:
                result.broken(
                    audit_id, f"seal {seq} differs from the head a checkpoint row recorded"
                )
            if not result.intact:
                break
            prev, expected_seq = digest, seq + 1
            result.checked += 1
            result.head_seq, result.head_hash = seq, digest
        if not result.intact:
            break
    if result.intact and since is None:
        archived.complete(result)
    elif archived.found:
        result.notes.append(
            f"{archived.found} rows are in archives of detached partitions (compared with the"
            " archives only when the whole chain is walked)"
        )
    if result.intact and checkpoint is not None:
        _check_witness(result, checkpoint, using=using)
    if result.intact:
        result.unsealed = unsealed_rows(since=since, using=using)
        if result.unsealed:
            result.broken(
                result.unsealed[0],
                f"{len(result.unsealed)} committed rows have no seal, below the sealer's horizon"
                " (inserted behind its back, or their seals removed)",
            )
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class ArchivedRows:
    """Rows that left the trail with their partition, through an archive (audit.archive).

    A seal whose row is missing is not a removal when the row's id lies in the id range of an
    archived unit whose partition was detached. Such ranges overlap (the classes of one month
    share ids), so the seals are added up over all of them: once the whole chain is walked, the
    missing rows found there must be, in number and seal sum, exactly those the archives hold. A
    row removed from such a range by other means, or one archived but still present, breaks it.
    """

    ranges: list[tuple[int, int]] = field(default_factory=list)
    expected_count: int = 0
    expected_sum: int = 0
    found: int = 0
    found_sum: int = 0
    first_found: int | None = None
    forged: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, *, using: str) -> ArchivedRows:
        held = cls()
        from audit.archive import archived_row

        for record in AuditArchive.objects.using(using).filter(detached_at__isnull=False):
            # The record is an ordinary table: what the chain trusts is the sealed AUDIT_ARCHIVED
            # row written with it (while that row is still in the trail).
            said = archived_row(record, using=using)
            if said is not None and (
                said.get("rowCount"),
                said.get("firstId"),
                said.get("lastId"),
                said.get("sealSum"),
            ) != (record.row_count, record.first_id, record.last_id, record.seal_sum):
                held.forged.append(record.key)
            held.expected_count += record.row_count
            held.expected_sum = (held.expected_sum + int(record.seal_sum, 16)) % SUM_MODULUS
            if record.first_id is not None and record.last_id is not None:
                held.ranges.append((record.first_id, record.last_id))
        return held

    def take(self, audit_id: int, seq: int, digest: str) -> bool:
        if not any(low <= audit_id <= high for low, high in self.ranges):
            return False
        self.found += 1
        self.found_sum = (self.found_sum + seal_term(audit_id, seq, digest)) % SUM_MODULUS
        if self.first_found is None:
            self.first_found = audit_id
        return True

    def complete(self, result: Verification) -> None:
        if self.forged:
            result.broken(
                self.first_found,
                f"the record of archive {self.forged[0]} differs from the AUDIT_ARCHIVED row"
                " the trail sealed for it",
            )
            return
        if (self.found, self.found_sum) == (self.expected_count, self.expected_sum):
            if self.found:
                result.notes.append(f"{self.found} rows are in verified archives, as recorded")
            return
        result.broken(
            self.first_found,
            f"{self.found} rows are missing within archived id ranges, the archives hold"
            f" {self.expected_count}: other rows were removed, or archived rows differ",
        )


def _check_witness(result: Verification, checkpoint: tuple[int | None, str], *, using: str) -> None:
    seq, digest = checkpoint
    seals = AuditSeal.objects.using(using)
    if seq is None:
        found = seals.filter(hash=digest).values_list("seq", flat=True).first()
        if found is None:
            # Without its seq the head cannot be placed: the whole chain is suspect.
            first_row = seals.order_by("seq").values_list("audit_id", flat=True).first()
            result.broken(first_row, f"the witnessed head {digest} is not in the chain")
            return
        seq = found
    at = seals.filter(seq=seq).values_list("audit_id", "hash").first()
    if at is None:
        last_row = seals.order_by("-seq").values_list("audit_id", flat=True).first()
        result.broken(last_row, f"the chain is shorter than the witnessed head {seq}:{digest}")
    elif at[1] != digest:
        result.broken(
            at[0], f"seal {seq} is not the witnessed head {digest}: rewritten at or before it"
        )
    else:
        result.notes.append(f"witnessed head {seq}:{digest} is in the chain")


def unsealed_rows(*, since: datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """Ids (the first 100) of committed rows below the horizon that have no seal."""
    state = ChainState.objects.using(using).filter(pk=1).first()
    if state is None or not state.horizon_id:
        return []
    rows = AuditLog.objects.using(using)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    sealed = AuditSeal.objects.using(using).filter(audit_id=OuterRef("pk"))
    found: list[int] = []
    # In ranges of ids, so that no one statement runs into the statement timeout on a big table.
    lowest = AuditLog.objects.using(using).aggregate(low=Min("pk"))["low"] or 1
    for low in range(lowest - 1, state.horizon_id, UNSEALED_RANGE):
        high = min(low + UNSEALED_RANGE, state.horizon_id)
        batch = rows.filter(pk__gt=low, pk__lte=high).exclude(Exists(sealed)).order_by("pk")
        found += batch.values_list("pk", flat=True)[: 100 - len(found)]
        if len(found) >= 100:
            break
    return found


def record_verification(
    result: Verification, *, runner: str, using: str = DEFAULT_DB_ALIAS
) -> None:
    """Keep the outcome for health; a newly found break is a CRITICAL row (the alert pages)."""
    from audit.services import AuditEntry, audit_record_independent

    previous = [
        (v.intact, v.first_broken_id, v.problem)
        for v in ChainVerification.objects.using(using).order_by("-verified_at")[:1]
    ]
    ChainVerification.objects.using(using).update_or_create(
        runner=runner,
        defaults={
            "verified_at": timezone.now(),
            "intact": result.intact,
            "checked": result.checked,
            "head_seq": result.head_seq,
            "head_hash": result.head_hash,
            "first_broken_id": result.first_broken_id,
            "problem": result.problem[:2000],
            "duration_ms": int(result.seconds * 1000),
        },
    )
    if not result.intact and previous != [(False, result.first_broken_id, result.problem[:2000])]:
        audit_record_independent(
            AuditEntry(
                Action.AUDIT_CHAIN_BROKEN,
                description=f"The audit hash chain is broken: {result.problem}",
                severity=Severity.CRITICAL,
                entity_type="AuditLog",
                entity_id=result.first_broken_id or "",
                metadata={"firstBrokenRow": result.first_broken_id, "runner": runner},
            )
        )


def latest_verification(*, using: str = DEFAULT_DB_ALIAS) -> ChainVerification | None:
    return ChainVerification.objects.using(using).order_by("-verified_at").first()


# --- checkpoints --------------------------------------------------------------------------------


def witness(seq: int, digest: str) -> str:
    return f"{seq}:{digest}"


def write_checkpoint() -> AuditLog | None:
    """Seal what is pending and record the head as an AUDIT_CHECKPOINT row (None: empty chain)."""
    from audit.services import AuditEntry, audit_record

    seal_pending(wait=True)
    seq, digest, sealed_at = head()
    if not seq:
        return None
    with transaction.atomic():
        return audit_record(
            AuditEntry(
                Action.AUDIT_CHECKPOINT,
                description=f"Audit chain checkpoint: seal {seq}, head {digest}",
                metadata={
                    "headSeq": seq,
                    "headHash": digest,
                    "sealedRows": seq,
                    "headSealedAt": _stamp(sealed_at) if sealed_at else None,
                    "witness": witness(seq, digest),
                },
            )
        )


def latest_checkpoint() -> dict[str, Any] | None:
    """The newest AUDIT_CHECKPOINT row's head, for the digest: {seq, hash, at, witness}."""
    found = timeline.newest(
        AuditLog.objects.filter(action=Action.AUDIT_CHECKPOINT).only("metadata", "created_at"),
        limit=1,
    )
    if not found:
        return None
    row = {"metadata": found[0].metadata, "created_at": found[0].created_at}
    metadata = row["metadata"] or {}
    return {
        "seq": metadata.get("headSeq"),
        "hash": metadata.get("headHash"),
        "at": row["created_at"],
        "witness": metadata.get("witness"),
    }
