"""Archives of old audit rows: written before a monthly partition leaves the database, verified
against their manifest and the hash chain, and restored for an audit.

An archive unit is the rows of one retention class (audit.retention) and one UTC calendar month.
Its files go to the storage `STORAGES["audit_archive"]` (a directory, or S3-compatible object
storage) under `<AUDIT_ARCHIVE_PREFIX>/<class>/<YYYY-MM>/`, which is also the archive's key:

* `rows.jsonl.gz`: one line per row, in id order, each line the row's canonical content
  (audit.chain.canonical: every stored column, sorted keys, UTC times), so a restore is lossless
  and each line hashes to exactly what the row's seal covered;
* `rows.csv.gz`: the same columns for a spreadsheet (cells that a spreadsheet would run as a
  formula start with an apostrophe, as in the audit-log export; the JSON Lines are the record);
* `manifest.json`, written last (an archive without one is unfinished): format, class, month,
  row count, first and last id, each file's sha256 and size, the rows' seals (first and last,
  a digest over every row's `id:seq:hash` and their order-free sum), when and by which version.

`AuditArchive` records each unit with the manifest's own sha256, so an edited manifest is found.
Rows are read in id order in chunks of READ_CHUNK (keyset, one short statement each) and written
through gzip to temporary files, so memory does not grow with the month.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any, TypeVar, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Field
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import chain, retention
from audit.models import Action, AuditArchive, AuditLog, AuditSeal, Severity
from audit.services import AuditEntry, audit_record
from core.spreadsheet import safe_cell

FORMAT = 1
JSONL = "rows.jsonl.gz"
CSV = "rows.csv.gz"
MANIFEST = "manifest.json"
READ_CHUNK = 2000
AUDIT_TABLE = AuditLog._meta.db_table
# The columns of every line: all of the trail's (the chain's newest format lists every one).
COLUMNS: tuple[str, ...] = chain.CANONICAL_COLUMNS[chain.FORMAT]
# Unquoted PostgreSQL identifiers only, as db_roles takes role names: these end up in SQL.
TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
T = TypeVar("T")


class ArchiveError(Exception):
    """The archive cannot be written, verified or restored as asked; the message says why."""


@dataclass(frozen=True)
class Manifest:
    key: str
    retention_class: str
    month: date
    row_count: int
    first_id: int | None
    last_id: int | None
    files: dict[str, dict[str, Any]]
    seals: dict[str, Any]
    source_table: str
    created_at: str
    app_version: str
    columns: tuple[str, ...] = COLUMNS
    format: int = FORMAT

    def to_json(self) -> bytes:
        body = {
            "format": self.format,
            "key": self.key,
            "retentionClass": self.retention_class,
            "month": self.month.strftime("%Y-%m"),
            "rowCount": self.row_count,
            "firstId": self.first_id,
            "lastId": self.last_id,
            "columns": list(self.columns),
            "files": self.files,
            "seals": self.seals,
            "sourceTable": self.source_table,
            "createdAt": self.created_at,
            "appVersion": self.app_version,
        }
        return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            body = json.loads(raw)
            return cls(
                key=body["key"],
                retention_class=body["retentionClass"],
                month=datetime.strptime(body["month"], "%Y-%m").date(),
                row_count=int(body["rowCount"]),
                first_id=body["firstId"],
                last_id=body["lastId"],
                files=dict(body["files"]),
                seals=dict(body["seals"]),
                source_table=body["sourceTable"],
                created_at=body["createdAt"],
                app_version=body["appVersion"],
                columns=tuple(body["columns"]),
                format=int(body["format"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"the manifest is not readable: {type(exc).__name__}") from None


def archive_storage() -> Storage:
    return storages["audit_archive"]


def unit_key(month: date, retention_class: str) -> str:
    if retention_class not in retention.CLASSES:
        raise ArchiveError(f"unknown retention class {retention_class!r}")
    return f"{settings.AUDIT_ARCHIVE_PREFIX}/{retention_class}/{month:%Y-%m}"


# --- the rows of a unit -------------------------------------------------------------------------


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = retention.month_start(month)
    return (
        datetime(start.year, start.month, 1, tzinfo=UTC),
        datetime.combine(retention.next_month(start), datetime.min.time(), tzinfo=UTC),
    )


def _class_condition(retention_class: str) -> tuple[str, list[str]]:
    if retention_class == retention.OTHER:
        listed = sorted(a for actions in retention.CLASS_ACTIONS.values() for a in actions)
        return f"action NOT IN ({', '.join(['%s'] * len(listed))})", listed
    actions = sorted(retention.actions_of(retention_class))
    return f"action IN ({', '.join(['%s'] * len(actions))})", actions


def check_table_name(name: str) -> str:
    if not TABLE_NAME.fullmatch(name):
        raise ArchiveError(
            f"{name!r} is not a table name this accepts: lower-case letters, digits and "
            "underscores, at most 63, not starting with a digit."
        )
    return name


def unit_rows(
    month: date, retention_class: str, *, source_table: str | None = None, using: str
) -> Iterator[dict[str, Any]]:
    """The unit's rows in id order, each as {column: canonical value}, READ_CHUNK at a time."""
    conn = connections[using]
    table = conn.ops.quote_name(check_table_name(source_table or AUDIT_TABLE))
    # As the ORM sends them: SQLite compares the stored text.
    bounds = [conn.ops.adapt_datetimefield_value(b) for b in month_bounds(month)]
    # A partition holds its unit and nothing else: read whole, whatever the action (the
    # month's `other` leaf also takes a row of a class whose own leaf had already left).
    condition, actions = ("TRUE", []) if source_table else _class_condition(retention_class)
    columns = ", ".join(conn.ops.quote_name(c) for c in COLUMNS)
    # Names come from the model and a checked identifier; values are parameters.
    where = f"created_at >= %s AND created_at < %s AND {condition}"
    with conn.cursor() as cursor:
        # The unit's highest id bounds every chunk: without it the last chunk of an old month
        # in an unpartitioned table would walk the primary key to the end of the table.
        cursor.execute(f"SELECT MAX(id) FROM {table} WHERE {where}", [*bounds, *actions])  # noqa: S608
        (highest,) = cursor.fetchone()
    if highest is None:
        return
    query = (
        f"SELECT {columns} FROM {table} WHERE {where}"  # noqa: S608
        f" AND id > %s AND id <= %s ORDER BY id LIMIT {READ_CHUNK}"
    )
    after = 0
    while True:
        with conn.cursor() as cursor:
            cursor.execute(query, [*bounds, *actions, after, highest])
            chunk = cursor.fetchall()
        for raw in chunk:
            yield _canonical_values(raw)
        if len(chunk) < READ_CHUNK:
            return
        after = chunk[-1][0]


def _canonical_values(raw: tuple) -> dict[str, Any]:
    """A row as the chain sees it (the ORM's values), from what the database driver returned."""
    values = dict(zip(COLUMNS, raw, strict=True))
    if isinstance(values["metadata"], str | bytes):
        values["metadata"] = json.loads(values["metadata"])
    moment = values["created_at"]
    if isinstance(moment, str):
        moment = parse_datetime(moment)
    # SQLite hands back naive UTC (as text, or parsed by Django's converter).
    assert isinstance(moment, datetime)
    values["created_at"] = moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
    for name in ("spool_id", "ip_address"):
        if values[name] is not None:
            model_field = cast(Field, AuditLog._meta.get_field(name))
            values[name] = str(model_field.to_python(values[name]))
    return values


# --- seals --------------------------------------------------------------------------------------


@dataclass
class SealTally:
    """The seals of a set of rows, as the manifest records them and the chain verifier adds up."""

    count: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    total: int = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None

    def add(self, audit_id: int, seq: int, seal_hash: str) -> None:
        line = f"{audit_id}:{seq}:{seal_hash}\n".encode()
        self.digest.update(line)
        self.total = (self.total + chain.seal_term(audit_id, seq, seal_hash)) % chain.SUM_MODULUS
        self.count += 1
        self.last = {"id": audit_id, "seq": seq, "hash": seal_hash}
        if self.first is None:
            self.first = self.last

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "digest": self.digest.hexdigest(),
            "sum": f"{self.total:064x}",
        }


def _seals_of(ids: list[int], *, using: str) -> dict[int, tuple]:
    rows = AuditSeal.objects.using(using).filter(audit_id__in=ids)
    return {
        r[0]: r[1:]
        for r in rows.values_list("audit_id", "seq", "hash", "prev_hash", "sealed_at", "format")
    }


def _chunks(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- writing ------------------------------------------------------------------------------------


class _Digesting(io.RawIOBase):
    """A binary file that passes writes on and keeps their sha256 and size."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.target.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif isinstance(value, datetime):
        value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return safe_cell("" if value is None else value)


def archive_month(
    month: date,
    retention_class: str,
    *,
    source_table: str | None = None,
    replace: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> Manifest:
    """Write the unit's files and manifest, record it (AuditArchive) and audit that.

    Refused when the unit already has a manifest in storage (unless `replace`, for a unit whose
    rows are still in the database), or when one of its rows has no seal yet.
    """
    month = retention.month_start(month)
    key = unit_key(month, retention_class)
    storage = archive_storage()
    existing = AuditArchive.objects.using(using).filter(key=key).first()
    if not replace and existing is not None:
        raise ArchiveError(f"{key} is archived already; audit_archive_verify {key} checks it")
    if not replace and storage.exists(f"{key}/{MANIFEST}"):
        raise ArchiveError(
            f"{key} has a manifest in storage but no record (an interrupted run?): look at it,"
            " then write it again with --replace"
        )
    if existing is not None and existing.dropped_at is not None:
        raise ArchiveError(f"{key}: its rows were dropped, the archive is all there is of them")
    if existing is not None and existing.detached_at is not None and not source_table:
        # Its rows left the audit table: read there, the unit would look empty.
        raise ArchiveError(
            f"{key}: its rows are in {existing.detached_table}: --source-table "
            f"{existing.detached_table}"
        )
    chain.seal_pending(using=using, wait=True, budget_seconds=600)
    tally = SealTally()
    first_id = last_id = None
    with tempfile.TemporaryFile() as jsonl_file, tempfile.TemporaryFile() as csv_file:
        jsonl_raw, csv_raw = _Digesting(jsonl_file), _Digesting(csv_file)
        # mtime=0: the same rows give the same bytes, whenever they are archived.
        with (
            gzip.GzipFile(fileobj=jsonl_raw, mode="wb", mtime=0) as jsonl_gz,
            gzip.GzipFile(fileobj=csv_raw, mode="wb", mtime=0) as csv_gz,
            io.TextIOWrapper(csv_gz, encoding="utf-8", newline="") as csv_text,
        ):
            writer = csv.writer(csv_text)
            writer.writerow(COLUMNS)
            rows = unit_rows(month, retention_class, source_table=source_table, using=using)
            for chunk in _chunks(rows, READ_CHUNK):
                seals = _seals_of([row["id"] for row in chunk], using=using)
                for row in chunk:
                    if row["id"] not in seals:
                        raise ArchiveError(f"row {row['id']} has no seal yet: run audit_verify")
                    seq, seal_hash = seals[row["id"]][:2]
                    tally.add(row["id"], seq, seal_hash)
                    jsonl_gz.write(chain.canonical(row) + b"\n")
                    writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
                    first_id = row["id"] if first_id is None else first_id
                    last_id = row["id"]
        manifest = Manifest(
            key=key,
            retention_class=retention_class,
            month=month,
            row_count=tally.count,
            first_id=first_id,
            last_id=last_id,
            files={
                JSONL: {"sha256": jsonl_raw.sha256.hexdigest(), "size": jsonl_raw.size},
                CSV: {"sha256": csv_raw.sha256.hexdigest(), "size": csv_raw.size},
            },
            seals=tally.summary(),
            source_table=source_table or AUDIT_TABLE,
            created_at=timezone.now().astimezone(UTC).isoformat(),
            app_version=settings.APP_VERSION,
        )
        for name, handle in ((JSONL, jsonl_file), (CSV, csv_file)):
            handle.seek(0)
            _put(storage, f"{key}/{name}", handle)
    raw_manifest = manifest.to_json()
    _put(storage, f"{key}/{MANIFEST}", io.BytesIO(raw_manifest))
    _record(manifest, hashlib.sha256(raw_manifest).hexdigest(), using=using)
    return manifest


def _put(storage: Storage, name: str, content: IO[bytes]) -> None:
    # The file system storage would pick another name for an existing file; an unfinished
    # archive's leftovers (no manifest yet) are replaced instead.
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, File(content, name=name))
    if saved != name:
        raise ArchiveError(f"the storage saved {name} as {saved}")


def _record(manifest: Manifest, manifest_sha256: str, *, using: str) -> AuditArchive:
    seals = manifest.seals
    values = {
        "retention_class": manifest.retention_class,
        "month": manifest.month,
        "source_table": manifest.source_table,
        "row_count": manifest.row_count,
        "first_id": manifest.first_id,
        "last_id": manifest.last_id,
        "manifest_sha256": manifest_sha256,
        "jsonl_sha256": manifest.files[JSONL]["sha256"],
        "csv_sha256": manifest.files[CSV]["sha256"],
        "seal_digest": seals["digest"],
        "seal_sum": seals["sum"],
        "first_seal_seq": (seals["first"] or {}).get("seq"),
        "last_seal_seq": (seals["last"] or {}).get("seq"),
        "archived_at": timezone.now(),
        "verified_at": None,
    }
    with transaction.atomic(using=using):
        record, _ = AuditArchive.objects.using(using).update_or_create(
            key=manifest.key, defaults=values
        )
        record_step(
            record,
            "archived",
            f"Audit rows archived: {manifest.key}, {manifest.row_count} rows",
            extra={"manifestSha256": manifest_sha256, "sealSum": seals["sum"]},
        )
    return record


def record_step(
    record: AuditArchive,
    step: str,
    description: str,
    *,
    severity: str = Severity.INFO,
    extra: dict[str, Any] | None = None,
) -> None:
    """The AUDIT_ARCHIVED row of one step, in the caller's transaction."""
    audit_record(
        AuditEntry(
            Action.AUDIT_ARCHIVED,
            description=description,
            severity=severity,
            entity_type="AuditArchive",
            entity_id=record.pk,
            metadata={
                "step": step,
                "key": record.key,
                "retentionClass": record.retention_class,
                "month": record.month.strftime("%Y-%m"),
                "rowCount": record.row_count,
                "firstId": record.first_id,
                "lastId": record.last_id,
                **(extra or {}),
            },
        )
    )


# --- reading and verifying ----------------------------------------------------------------------


def read_manifest(key: str) -> tuple[Manifest, str]:
    """The manifest in storage and its sha256."""
    storage = archive_storage()
    name = f"{key}/{MANIFEST}"
    if not storage.exists(name):
        raise ArchiveError(f"{key}: there is no manifest in the archive storage")
    with storage.open(name, "rb") as handle:
        raw = handle.read()
    return Manifest.from_json(raw), hashlib.sha256(raw).hexdigest()


class _DigestingReader(io.RawIOBase):
    """A binary file that keeps the sha256 of what is read from it."""

    def __init__(self, source: IO[bytes], digest: Any) -> None:
        self.source, self.digest = source, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def archived_lines(key: str, *, digest: Any = None) -> Iterator[bytes]:
    """The JSON Lines of an archive, decompressed a line at a time (no check: see verify).

    `digest` (a hashlib object) is fed the compressed bytes, for a caller that must know the
    lines it read are those of the file it verified.
    """
    with archive_storage().open(f"{key}/{JSONL}", "rb") as handle:
        source = _DigestingReader(handle, digest) if digest is not None else handle
        with gzip.open(io.BufferedReader(source) if digest is not None else source) as lines:
            for line in lines:
                yield line.rstrip(b"\n")


@dataclass
class ArchiveCheck:
    key: str
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    jsonl_sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _file_digest(storage: Storage, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with storage.open(name, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def verify_archive(key: str, *, using: str = DEFAULT_DB_ALIAS) -> ArchiveCheck:
    """Check an archive against its record, its manifest and the seals in the database.

    Each file's sha256 and size; each line is a row of the unit in canonical form, in id order,
    whose seal's hash it reproduces; count, id range and the seals' digest and sum as recorded.
    """
    check = ArchiveCheck(key)
    try:
        manifest, manifest_sha256 = read_manifest(key)
    except ArchiveError as exc:
        check.problems.append(str(exc))
        return check
    record = AuditArchive.objects.using(using).filter(key=key).first()
    if record is None:
        check.problems.append(f"{key}: no AuditArchive record vouches for this manifest")
    elif record.manifest_sha256 != manifest_sha256:
        check.problems.append(f"{key}: the manifest differs from the one recorded when archived")
    elif (record.row_count, record.seal_sum) != (manifest.row_count, manifest.seals.get("sum")):
        check.problems.append(f"{key}: the record's row count or seals differ from the manifest")
    if manifest.key != key or manifest.format != FORMAT:
        check.problems.append(f"{key}: the manifest names {manifest.key}, format {manifest.format}")
        return check
    storage = archive_storage()
    for name in (JSONL, CSV):
        expected = manifest.files.get(name, {})
        if not storage.exists(f"{key}/{name}"):
            check.problems.append(f"{key}/{name} is missing")
            continue
        digest, size = _file_digest(storage, f"{key}/{name}")
        if (digest, size) != (expected.get("sha256"), expected.get("size")):
            check.problems.append(f"{key}/{name}: sha256 or size differs from the manifest")
        elif name == JSONL:
            check.jsonl_sha256 = digest
    if check.problems:
        return check
    _check_rows(check, manifest, using=using)
    witnessed = archived_row(record, using=using) if record is not None else None
    if witnessed is not None and witnessed.get("manifestSha256") != manifest_sha256:
        # The record is an ordinary table; the AUDIT_ARCHIVED row is sealed by the chain.
        check.problems.append(f"{key}: the manifest differs from the one the trail recorded")
    return check


def archived_row(record: AuditArchive, *, using: str = DEFAULT_DB_ALIAS) -> dict[str, Any] | None:
    """The metadata of the trail's newest `archived` row for this archive (None: not there, e.g.
    itself archived away after the money years)."""
    rows = AuditLog.objects.using(using).filter(
        action=Action.AUDIT_ARCHIVED, entity_type="AuditArchive", entity_id=str(record.pk)
    )
    return (
        rows.filter(metadata__step="archived").order_by("-id").values_list("metadata", flat=True)
    ).first()


def _check_rows(check: ArchiveCheck, manifest: Manifest, *, using: str) -> None:
    start, end = month_bounds(manifest.month)
    tally = SealTally()
    first_id = last_id = None
    for chunk in _chunks(_parsed_lines(check), READ_CHUNK):
        seals = _seals_of([values["id"] for _, values in chunk], using=using)
        for line, values in chunk:
            row_id = values["id"]
            stamp = parse_datetime(values["created_at"])
            if row_id not in seals:
                check.problems.append(f"row {row_id} has no seal in the database")
            elif not _is_sealed_row(line, values, seals[row_id]):
                check.problems.append(
                    f"row {row_id} (seal {seals[row_id][0]}) differs from the sealed row"
                )
            elif last_id is not None and row_id <= last_id:
                check.problems.append(f"row {row_id} is out of id order")
            elif stamp is None or not start <= stamp < end:
                check.problems.append(f"row {row_id} is not of {manifest.month:%Y-%m}")
            elif manifest.retention_class != retention.OTHER and (
                retention.class_of(values["action"]) != manifest.retention_class
            ):
                check.problems.append(f"row {row_id} is not of class {manifest.retention_class}")
            else:
                tally.add(row_id, *seals[row_id][:2])
            if check.problems:
                return
            first_id = row_id if first_id is None else first_id
            last_id = row_id
    check.rows = tally.count
    summary = tally.summary()
    if tally.count != manifest.row_count:
        check.problems.append(
            f"{check.key}: {tally.count} rows, the manifest says {manifest.row_count}"
        )
    elif (first_id, last_id) != (manifest.first_id, manifest.last_id):
        check.problems.append(
            f"{check.key}: ids {first_id}-{last_id}, the manifest says "
            f"{manifest.first_id}-{manifest.last_id}"
        )
    elif (summary["digest"], summary["sum"]) != (
        manifest.seals.get("digest"),
        manifest.seals.get("sum"),
    ):
        check.problems.append(f"{check.key}: the rows' seals differ from the manifest's")


def _is_sealed_row(line: bytes, values: dict[str, Any], seal: tuple) -> bool:
    """The line is the row's canonical content, and that content is what its seal covered."""
    seq, seal_hash, prev_hash, sealed_at, fmt = seal
    if fmt not in chain.CANONICAL_COLUMNS:
        return False
    if chain.canonical(values) != line:
        return False
    content = chain.canonical({c: values[c] for c in chain.CANONICAL_COLUMNS[fmt]})
    return seal_hash == chain.seal_hash(
        prev_hash=prev_hash, seq=seq, sealed_at=sealed_at, content=content
    )


def _parsed_lines(check: ArchiveCheck) -> Iterator[tuple[bytes, dict[str, Any]]]:
    try:
        for number, line in enumerate(archived_lines(check.key), start=1):
            try:
                values = json.loads(line)
                if not isinstance(values, dict) or set(values) != set(COLUMNS):
                    raise ValueError("not a row")
                if not isinstance(values["id"], int) or not all(
                    isinstance(values[c], str) for c in ("action", "created_at")
                ):
                    raise ValueError("not a row")
            except ValueError:
                check.problems.append(f"{check.key}: line {number} is not a row of the trail")
                return
            yield line, values
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        check.problems.append(f"{check.key}/{JSONL} cannot be read: {type(exc).__name__}")


def mark_verified(
    record: AuditArchive, check: ArchiveCheck, *, using: str = DEFAULT_DB_ALIAS
) -> None:
    """Record the outcome of a verification: verified_at and an INFO row, or a CRITICAL row."""
    with transaction.atomic(using=using):
        if check.ok:
            record.verified_at = timezone.now()
            record.save(using=using, update_fields=["verified_at"])
            record_step(record, "verified", f"Audit archive verified: {record.key}")
        else:
            record_step(
                record,
                "verify_failed",
                f"Audit archive does not match its manifest: {record.key}",
                severity=Severity.CRITICAL,
                extra={"problem": check.problems[0][:500]},
            )
