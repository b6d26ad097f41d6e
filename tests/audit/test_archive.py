"""Archives of old audit rows (audit.archive, audit.restore, audit.expiry): archive → verify →
restore on the file system and on an S3-protocol server, tampered archives, retention, and the
chain verifier after rows left through an archive."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import RequestFactory

from audit import archive, chain, partitions, retention
from audit.context import bind_request, unbind
from audit.expiry import apply_retention
from audit.models import Action, AuditArchive, AuditLog, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent
from tests import database
from tests.audit.chain_support import verify
from tests.production import PRODUCTION_ENV, run_python

DECEMBER = date(2016, 12, 1)
KEY = "audit/money/2016-12"


@pytest.fixture
def restore_table():
    # Not a model's table: the flush after a transactional test would leave it for the next.
    yield
    with database.owner_connection().cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS audit_restored")


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archive")},
        },
    }
    return tmp_path / "archive"


def at(moment: datetime, *actions: str) -> list[AuditLog]:
    """Rows of these actions written at `moment`, with every column of the trail filled in."""
    request = RequestFactory(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Firefox ü").post(
        "/api/invoices/7/pay-and-convert"
    )
    rows = []
    with time_machine.travel(moment, tick=False):
        token = bind_request(request)
        try:
            with transaction.atomic():
                for i, action in enumerate(actions):
                    rows.append(
                        audit_record(
                            AuditEntry(
                                action,
                                description=f"=SUM(A1) {action} {i}",
                                entity_type="Payment",
                                entity_id=i,
                                metadata={"amount": "100.00", "n": [i, None, 1.5], "ü": True},
                            )
                        )
                    )
            # With an error's message and stack and a spool id (the independent writer's).
            try:
                raise ValueError("the bank refused")
            except ValueError as exc:
                failure = audit_record_independent(
                    AuditEntry(
                        Action.PAYMENT_RECEIVED,
                        description="payment failed",
                        severity=Severity.ERROR,
                        error=exc,
                    )
                )
            assert failure is not None
            rows.append(failure)
        finally:
            unbind(token)
    return rows


def stored(ids) -> list[dict]:
    columns = archive.COLUMNS
    return [
        dict(zip(columns, r, strict=True))
        for r in AuditLog.objects.filter(pk__in=ids).order_by("pk").values_list(*columns)
    ]


def run(name: str, *args: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command(name, *args, stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


def jsonl(key: str = KEY) -> list[bytes]:
    return list(archive.archived_lines(key))


def rewrite(key: str, name: str, content: bytes) -> None:
    storage = storages["audit_archive"]
    storage.delete(f"{key}/{name}")
    storage.save(f"{key}/{name}", io.BytesIO(content))


def gz(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)


# --- archiving ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_archive_holds_the_rows_of_its_class_and_month_only_every_column_of_each():
    money = at(datetime(2016, 12, 3, 9, tzinfo=UTC), Action.PAYMENT_RECEIVED, Action.LEAD_CREATED)
    at(datetime(2016, 11, 30, 23, 59, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    at(datetime(2017, 1, 1, tzinfo=UTC), Action.INVOICE_GENERATED)
    expected = [r.pk for r in money if retention.class_of(r.action) == retention.MONEY]

    manifest = archive.archive_month(DECEMBER, retention.MONEY)

    assert (manifest.key, manifest.row_count) == (KEY, 2)
    assert (manifest.first_id, manifest.last_id) == (expected[0], expected[-1])
    lines = jsonl()
    assert lines == [chain.canonical(values) for values in stored(expected)]
    assert [json.loads(line)["id"] for line in lines] == expected
    failure = json.loads(lines[-1])
    assert failure["error_stack"].startswith("Traceback") and failure["spool_id"]
    assert failure["ip_address"] == "203.0.113.9"
    with (
        storages["audit_archive"].open(f"{KEY}/{archive.CSV}") as handle,
        gzip.open(handle) as unzipped,
    ):
        table = list(csv.reader(io.TextIOWrapper(unzipped, encoding="utf-8")))
    assert table[0] == list(archive.COLUMNS)
    assert [int(row[0]) for row in table[1:]] == expected
    described = table[1][archive.COLUMNS.index("description")]
    assert described == "'=SUM(A1) PAYMENT_RECEIVED 0"  # a spreadsheet's formula, as text


@pytest.mark.django_db
def test_the_manifest_records_counts_hashes_and_seals_and_the_archive_is_recorded_and_audited():
    rows = at(datetime(2016, 12, 3, tzinfo=UTC), Action.PAYMENT_RECEIVED, Action.STUDENT_CREATED)

    manifest = archive.archive_month(DECEMBER, retention.MONEY)

    storage = storages["audit_archive"]
    for name in (archive.JSONL, archive.CSV):
        with storage.open(f"{KEY}/{name}", "rb") as handle:
            content = handle.read()
        assert manifest.files[name] == {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
        }
    seals = chain.AuditSeal.objects.filter(audit_id__in=[r.pk for r in rows]).order_by("audit_id")
    lines = "".join(f"{s.audit_id}:{s.seq}:{s.hash}\n" for s in seals)
    assert manifest.seals["digest"] == hashlib.sha256(lines.encode()).hexdigest()
    assert manifest.seals["first"] == {"id": rows[0].pk, "seq": seals[0].seq, "hash": seals[0].hash}
    assert manifest.seals["count"] == 3
    raw = storage.open(f"{KEY}/{archive.MANIFEST}", "rb").read()
    assert json.loads(raw)["month"] == "2016-12"
    record = AuditArchive.objects.get()
    assert (record.key, record.row_count, record.first_id, record.last_id) == (
        KEY,
        3,
        rows[0].pk,
        rows[-1].pk,
    )
    assert record.manifest_sha256 == hashlib.sha256(raw).hexdigest()
    [audited] = AuditLog.objects.filter(action=Action.AUDIT_ARCHIVED)
    assert audited.metadata["step"] == "archived"
    assert audited.metadata["manifestSha256"] == record.manifest_sha256


@pytest.mark.django_db
def test_the_other_class_takes_every_action_no_class_lists():
    rows = at(datetime(2016, 12, 3, tzinfo=UTC), Action.LEAD_CREATED, Action.LOGIN)

    manifest = archive.archive_month(DECEMBER, retention.OTHER)

    assert [json.loads(line)["id"] for line in jsonl("audit/other/2016-12")] == [rows[0].pk]
    assert manifest.row_count == 1


@pytest.mark.django_db
def test_a_unit_archived_once_is_not_archived_again():
    at(datetime(2016, 12, 3, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    archive.archive_month(DECEMBER, retention.MONEY)
    before = open_manifest()

    ok, out = run("audit_archive", "--month", "2016-12", "--class", "money")

    assert not ok
    assert f"{KEY} is archived already" in out
    assert open_manifest() == before
    assert AuditLog.objects.filter(action=Action.AUDIT_ARCHIVED).count() == 1


def open_manifest() -> bytes:
    with storages["audit_archive"].open(f"{KEY}/{archive.MANIFEST}", "rb") as handle:
        return handle.read()


@pytest.mark.django_db
def test_bad_arguments_are_refused_with_a_clear_line_and_write_nothing():
    assert "is not a month" in run("audit_archive", "--month", "2016-13", "--class", "money")[1]
    refused = run("audit_archive", "--month", "2016-12", "--class", "money", "--source-table", "x;")
    assert "is not a table name" in refused[1]
    assert "name one archive KEY, or --all" in run("audit_archive_verify")[1]
    assert "no manifest" in run("audit_archive_verify", "audit/money/1999-01")[1]
    assert "is not a date" in run("audit_retention", "--today", "soon")[1]
    assert not AuditArchive.objects.exists()
    assert not AuditLog.objects.exists()


# --- verify and restore -------------------------------------------------------------------------


def restored(table: str = "audit_restored") -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608
        names = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
    result = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        key = values.pop("archive_key")
        result.append(
            (key, as_json(archive._canonical_values(tuple(values[c] for c in archive.COLUMNS))))
        )
    return result


def as_json(values: dict) -> dict:
    """Column by column, each as the chain's canonical content spells it (UUIDs, UTC times)."""
    return json.loads(chain.canonical(values))


def round_trip() -> None:
    """archive → verify → restore through the commands; the restored rows are the originals."""
    rows = at(datetime(2016, 12, 3, tzinfo=UTC), Action.PAYMENT_RECEIVED, Action.INVOICE_SENT)
    originals = stored([r.pk for r in rows])

    archived = run("audit_archive", "--month", "2016-12", "--class", "money")
    verified = run("audit_archive_verify", KEY)
    with database.connected_as_owner():
        loaded = run("audit_restore", KEY)
        again = run("audit_restore", KEY)
        copies = restored()

    assert archived[0], archived[1]
    assert verified == (True, f"{KEY}: verified, 3 rows\n1 of 1 archives verify\n")
    assert loaded[0] and again[0], loaded[1] + again[1]
    assert f"restored 3 rows of {KEY} into audit_restored" in again[1]
    assert copies == [(KEY, as_json(values)) for values in originals]
    assert AuditArchive.objects.get().verified_at is not None
    steps = AuditLog.objects.filter(action=Action.AUDIT_ARCHIVED).order_by("id")
    assert [r.metadata["step"] for r in steps] == ["archived", "verified", "restored", "restored"]
    # Nothing was written into the trail but those rows.
    assert AuditLog.objects.exclude(action=Action.AUDIT_ARCHIVED).count() == len(rows)
    assert verify()[0]


@pytest.mark.usefixtures("restore_table")
@pytest.mark.django_db(transaction=True)
def test_archive_verify_restore_round_trip_on_the_file_system(archive_dir):
    round_trip()

    assert (archive_dir / KEY / archive.MANIFEST).is_file()


@pytest.fixture
def s3_server(settings):
    """A local S3-protocol server (moto) on a free port of 127.0.0.1, and a bucket on it."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {
        "bucket_name": "planbeta-audit-archive",
        "endpoint_url": endpoint,
        "region_name": "eu-central-1",
        "access_key": "test-access",
        "secret_key": "test-secret",
        "addressing_style": "path",
        "file_overwrite": True,
        "max_memory_size": 1024,
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=options["region_name"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
    )
    client.create_bucket(
        Bucket=options["bucket_name"],
        CreateBucketConfiguration={"LocationConstraint": options["region_name"]},
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_archive": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    try:
        yield client, options["bucket_name"]
    finally:
        server.stop()


@pytest.mark.usefixtures("restore_table")
@pytest.mark.django_db(transaction=True)
def test_archive_verify_restore_round_trip_on_an_s3_server(s3_server):
    client, bucket = s3_server

    round_trip()

    listed = client.list_objects_v2(Bucket=bucket, Prefix=KEY)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"{KEY}/manifest.json",
        f"{KEY}/rows.csv.gz",
        f"{KEY}/rows.jsonl.gz",
    ]


def test_the_production_settings_use_s3_when_a_bucket_is_named():
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.STORAGES['audit_archive']))"
    )
    env = {
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "planbeta.settings",
        "AUDIT_ARCHIVE_S3_BUCKET": "archive-bucket",
        "AUDIT_ARCHIVE_S3_ENDPOINT_URL": "https://s3.example",
        "AUDIT_ARCHIVE_S3_REGION": "eu-central-1",
    }
    result = run_python("-c", script, env=env)
    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout.splitlines()[-1])
    assert configured["BACKEND"] == "storages.backends.s3.S3Storage"
    assert configured["OPTIONS"]["bucket_name"] == "archive-bucket"
    assert configured["OPTIONS"]["endpoint_url"] == "https://s3.example"


# --- tampering ----------------------------------------------------------------------------------


def _change_a_byte(lines: list[bytes]) -> list[bytes]:
    lines[0] = lines[0].replace(b"PAYMENT_RECEIVED 0", b"PAYMENT_RECEIVED 9", 1)
    return lines


def _manifest_for(lines: list[bytes]) -> dict:
    """A manifest rewritten to match edited lines, as someone covering their tracks would."""
    body = json.loads(open_manifest())
    content = gz(lines)
    body["files"][archive.JSONL] = {
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }
    body["rowCount"] = len(lines)
    body["lastId"] = json.loads(lines[-1])["id"]
    return body


def tamper_a_byte():
    rewrite(KEY, archive.JSONL, gz(_change_a_byte(jsonl())))


def tamper_a_line_removed_and_manifest_rewritten():
    lines = jsonl()[:-1]
    body = _manifest_for(lines)
    rewrite(KEY, archive.JSONL, gz(lines))
    rewrite(KEY, archive.MANIFEST, json.dumps(body).encode())


def tamper_the_manifest():
    body = json.loads(open_manifest())
    body["rowCount"] = 2
    rewrite(KEY, archive.MANIFEST, json.dumps(body).encode())


def tamper_everything_but_the_seals():
    # Lines, manifest and its record all agree; only the chain's seals know the row.
    lines = _change_a_byte(jsonl())
    body = _manifest_for(lines)
    raw = json.dumps(body).encode()
    rewrite(KEY, archive.JSONL, gz(lines))
    rewrite(KEY, archive.MANIFEST, raw)
    AuditArchive.objects.update(
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        jsonl_sha256=body["files"][archive.JSONL]["sha256"],
    )


def tamper_a_line_removed_and_everything_rewritten():
    # Lines, manifest (seals included) and record agree: only the sealed AUDIT_ARCHIVED row of
    # the trail still says what the manifest was.
    lines = jsonl()[:-1]
    body = _manifest_for(lines)
    tally = archive.SealTally()
    for line in lines:
        seal = chain.AuditSeal.objects.get(audit_id=json.loads(line)["id"])
        tally.add(seal.audit_id, seal.seq, seal.hash)
    body["seals"] = tally.summary()
    raw = json.dumps(body).encode()
    rewrite(KEY, archive.JSONL, gz(lines))
    rewrite(KEY, archive.MANIFEST, raw)
    AuditArchive.objects.update(
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        row_count=len(lines),
        last_id=body["lastId"],
        seal_sum=tally.summary()["sum"],
    )


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        (tamper_a_byte, f"{KEY}/rows.jsonl.gz: sha256 or size differs from the manifest"),
        (tamper_a_line_removed_and_manifest_rewritten, "differs from the one recorded"),
        (tamper_the_manifest, "the manifest differs from the one recorded when archived"),
        (tamper_everything_but_the_seals, ") differs from the sealed row"),
        (tamper_a_line_removed_and_everything_rewritten, "differs from the one the trail recorded"),
    ],
)
@pytest.mark.usefixtures("restore_table")
@pytest.mark.django_db(transaction=True)
def test_a_tampered_archive_fails_verify_and_restore_refuses_it(tamper, said):
    at(datetime(2016, 12, 3, tzinfo=UTC), Action.PAYMENT_RECEIVED, Action.INVOICE_SENT)
    archive.archive_month(DECEMBER, retention.MONEY)
    tamper()

    ok, out = run("audit_archive_verify", KEY)
    with database.connected_as_owner():
        refused = run("audit_restore", KEY)
        tables = connection.introspection.table_names()

    assert not ok
    assert f"{KEY}: DOES NOT VERIFY: " in out and said in out
    assert not refused[0]
    assert f"{KEY} does not verify, nothing restored" in refused[1]
    assert "audit_restored" not in tables
    assert AuditArchive.objects.get().verified_at is None
    failed = AuditLog.objects.filter(action=Action.AUDIT_ARCHIVED, severity=Severity.CRITICAL)
    assert [r.metadata["step"] for r in failed] == ["verify_failed"]


@pytest.mark.usefixtures("restore_table")
@pytest.mark.django_db(transaction=True)
def test_restore_never_writes_into_a_table_of_the_application():
    at(datetime(2016, 12, 3, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    archive.archive_month(DECEMBER, retention.MONEY)
    before = AuditLog.objects.count()

    with database.connected_as_owner():
        into_trail = run("audit_restore", KEY, "--into", "audit_auditlog")
        into_users = run("audit_restore", KEY, "--into", "accounts_user")

    assert "is a table of the application" in into_trail[1] and not into_trail[0]
    assert "is a table of the application" in into_users[1] and not into_users[0]
    assert AuditLog.objects.count() == before


# --- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    table: str
    month: date
    retention_class: str
    attached: bool
    rows_estimate: int | None = None


class ListedLeaves:
    """Partitions that only list themselves; any change asked of them fails the test."""

    def __init__(self, leaves):
        self.leaves = leaves

    def list_partitions(self):
        return self.leaves

    def detach_partition(self, month, retention_class):
        raise AssertionError("a dry run detached a partition")

    def drop_detached(self, table):
        raise AssertionError("a dry run dropped a table")


def leaf(month: date, retention_class: str, attached: bool = True) -> Leaf:
    return Leaf(
        f"audit_auditlog_y{month:%Y}m{month:%m}_{retention_class}", month, retention_class, attached
    )


@pytest.mark.django_db
def test_retention_dry_run_lists_the_due_units_and_changes_nothing(settings, archive_dir):
    settings.AUDIT_RETENTION_YEARS = {"money": 10, "errors": 2, "access": 1, "other": 3}
    at(datetime(2016, 12, 3, tzinfo=UTC), Action.PAYMENT_RECEIVED, Action.LOGIN)
    leaves = [
        leaf(date(2016, 11, 1), "money"),  # due on 2026-12-01
        leaf(DECEMBER, "money"),  # due tomorrow
        leaf(date(2024, 11, 1), "errors"),
        leaf(date(2025, 11, 1), "access"),
        leaf(date(2025, 12, 1), "access"),
        leaf(date(2015, 1, 1), "money", attached=False),
    ]
    said: list[str] = []
    rows_before = AuditLog.objects.count()

    failed = apply_retention(
        today=date(2026, 12, 31), dry_run=True, partitions=ListedLeaves(leaves), say=said.append
    )

    assert failed == 0
    assert said == [
        f"due: audit/{name} (audit_auditlog_{table}): would archive, verify, detach, drop"
        for name, table in [
            ("money/2016-11", "y2016m11_money"),
            ("errors/2024-11", "y2024m11_errors"),
            ("access/2025-11", "y2025m11_access"),
        ]
    ]
    assert AuditLog.objects.count() == rows_before
    assert not AuditArchive.objects.exists()
    assert not archive_dir.exists()


# --- retention on the partitioned trail (PostgreSQL), run as the owner as operators do ---------
# Each test has a month of its own: a month's partitions outlive the flush after a test.


@pytest.fixture
def superuser(django_db_setup):
    roles = database.ROLES
    if roles is None or roles.superuser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs the suite with a superuser's DATABASE_URL.")
        pytest.skip("needs DATABASE_URL to name a superuser")
    with database.connect_as_superuser(dbname=connection.settings_dict["NAME"]) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _test_months_removed(request):
    # The months these tests create (2016, 2017) outlive the flush: removed, so that no later test
    # finds partitions it did not make.
    yield
    if "postgres" not in request.keywords or not database.on_postgresql():
        return
    with database.owner_connection().cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c"
            " WHERE c.relname ~ '^audit_auditlog_y201[0-9]m[0-9]{2}$'"
            " OR (c.relname ~ '^audit_auditlog_y201[0-9]m[0-9]{2}_[a-z]+$' AND c.relkind = 'r'"
            " AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')


def leaf_state(month: date, retention_class: str) -> tuple[bool, bool]:
    """(the table exists, it is attached to the trail)."""
    table = partitions.leaf_table(month, retention_class)
    with database.owner_connection().cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(%s) IS NOT NULL,"
            " EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s))",
            [table, table],
        )
        return cursor.fetchone()


def retention_as_owner(today: date, said: list[str] | None = None, **options) -> int:
    with database.connected_as_owner():
        return apply_retention(
            today=today, say=(said if said is not None else []).append, **options
        )


def remove_behind_the_trails_back(superuser, row_id: int) -> None:
    superuser.execute("ALTER TABLE audit_auditlog DISABLE TRIGGER audit_auditlog_append_only")
    try:
        superuser.execute("DELETE FROM audit_auditlog WHERE id = %s", [row_id])
    finally:
        superuser.execute(
            "ALTER TABLE audit_auditlog ENABLE ALWAYS TRIGGER audit_auditlog_append_only"
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_retention_dry_run_on_the_partitioned_trail_lists_due_leaves_and_changes_nothing():
    july = date(2016, 7, 1)
    rows = at(datetime(2016, 7, 4, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    partitions.ensure_partitions(0)

    with database.connected_as_owner():
        ok, out = run("audit_retention", "--dry-run", "--today", "2027-01-01")

    assert ok, out
    assert (
        "due: audit/money/2016-07 (audit_auditlog_y2016m07_money): would archive, verify,"
        " detach, drop" in out
    )
    assert "audit/money/2016-08" not in out  # not due until 2027-02-01
    assert leaf_state(july, "money") == (True, True)
    assert AuditLog.objects.filter(pk__in=[r.pk for r in rows]).count() == 2
    assert not AuditArchive.objects.exists()
    assert not AuditLog.objects.filter(action=Action.AUDIT_ARCHIVED).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_retention_detaches_and_drops_only_due_leaves_and_the_chain_still_verifies():
    december = at(datetime(2016, 12, 3, tzinfo=UTC), Action.LEAD_CREATED, Action.INVOICE_SENT)
    january = at(datetime(2017, 1, 4, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    partitions.ensure_partitions(0)
    assert verify()[0]
    said: list[str] = []

    failed = retention_as_owner(date(2027, 1, 1), said)

    assert failed == 0, said
    # Money of December 2016 and every shorter class are due; money of January 2017 is not.
    for retention_class in retention.CLASSES:
        assert leaf_state(DECEMBER, retention_class) == (False, False), retention_class
    assert leaf_state(date(2017, 1, 1), "money") == (True, True)
    assert not AuditLog.objects.filter(pk__in=[r.pk for r in december]).exists()
    assert AuditLog.objects.filter(pk__in=[r.pk for r in january]).count() == 2
    record = AuditArchive.objects.get(key=KEY)
    assert (record.row_count, record.source_table) == (2, "audit_auditlog_y2016m12_money")
    assert None not in (record.verified_at, record.detached_at, record.dropped_at)
    steps = AuditLog.objects.filter(
        action=Action.AUDIT_ARCHIVED, entity_id=str(record.pk)
    ).order_by("id")
    assert [r.metadata["step"] for r in steps] == [
        "archived",
        "verified",
        "detached",
        "verified",
        "dropped",
    ]
    assert [json.loads(line)["id"] for line in jsonl("audit/other/2016-12")] == [december[0].pk]
    ok, out = verify()
    assert ok, out
    assert "3 rows are in verified archives, as recorded" in out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_keep_detached_stops_before_the_drop_and_the_next_run_drops():
    november = date(2016, 11, 1)
    at(datetime(2016, 11, 3, tzinfo=UTC), Action.INVOICE_SENT)
    partitions.ensure_partitions(0)

    retention_as_owner(date(2027, 1, 1), keep_detached=True)
    kept = leaf_state(november, "money")
    retention_as_owner(date(2027, 1, 1))

    assert kept == (True, False)
    assert leaf_state(november, "money") == (False, False)
    assert AuditArchive.objects.get(key="audit/money/2016-11").dropped_at is not None
    assert verify()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_month_dropped_without_an_archive_record_is_reported_broken():
    gone = at(datetime(2016, 10, 4, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    partitions.ensure_partitions(0)
    assert verify()[0]

    with database.connected_as_owner():
        partitions.drop_detached(partitions.detach_partition(date(2016, 10, 1), "money"))
    ok, out = verify()

    assert not ok
    assert f"row {gone[0].pk} (seal 1) was removed" in out


@pytest.fixture
def money_kept_one_year(settings):
    # Money goes before the other classes, so that a row of another class is still there.
    settings.AUDIT_RETENTION_YEARS = {"money": 1, "errors": 10, "access": 10, "other": 10}


@pytest.mark.postgres
@pytest.mark.usefixtures("money_kept_one_year")
@pytest.mark.django_db(transaction=True)
def test_another_row_removed_within_an_archived_range_is_reported_broken(superuser):
    rows = at(
        datetime(2016, 9, 4, tzinfo=UTC),
        Action.PAYMENT_RECEIVED,
        Action.LEAD_CREATED,
        Action.INVOICE_SENT,
    )
    partitions.ensure_partitions(0)
    assert retention_as_owner(date(2018, 1, 1)) == 0
    assert verify()[0]

    # LEAD_CREATED is not money: its id lies between the archived rows', yet it is not archived.
    remove_behind_the_trails_back(superuser, rows[1].pk)
    ok, out = verify()

    assert not ok
    assert "4 rows are missing within archived id ranges, the archives hold 3" in out


@pytest.mark.postgres
@pytest.mark.usefixtures("money_kept_one_year")
@pytest.mark.django_db(transaction=True)
def test_an_archive_record_rewritten_to_hide_a_removed_row_is_reported_broken(superuser):
    rows = at(datetime(2016, 8, 4, tzinfo=UTC), Action.PAYMENT_RECEIVED, Action.LEAD_CREATED)
    partitions.ensure_partitions(0)
    assert retention_as_owner(date(2018, 1, 1)) == 0
    assert verify()[0]

    # The lead's row removed, and the archive's record made to count it among the archived.
    hidden = chain.AuditSeal.objects.get(audit_id=rows[1].pk)
    record = AuditArchive.objects.get(key="audit/money/2016-08")
    total = int(record.seal_sum, 16) + chain.seal_term(hidden.audit_id, hidden.seq, hidden.hash)
    AuditArchive.objects.filter(pk=record.pk).update(
        row_count=3, seal_sum=f"{total % chain.SUM_MODULUS:064x}"
    )
    remove_behind_the_trails_back(superuser, rows[1].pk)
    ok, out = verify()

    assert not ok
    assert "the record of archive audit/money/2016-08 differs from the AUDIT_ARCHIVED row" in out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_that_arrived_after_the_archive_keeps_the_detached_table_until_archived_again():
    june = date(2016, 6, 1)
    key, table = "audit/money/2016-06", partitions.leaf_table(june, "money")
    at(datetime(2016, 6, 4, tzinfo=UTC), Action.PAYMENT_RECEIVED)
    partitions.ensure_partitions(0)
    archive.archive_month(june, retention.MONEY)
    # A failure row of June, replayed from a spool after the archive was written.
    late = at(datetime(2016, 6, 20, tzinfo=UTC), Action.INVOICE_SENT)
    said: list[str] = []

    stopped = retention_as_owner(date(2027, 1, 1), said)

    assert stopped == 1, said
    assert f"STOPPED {key}: {table} holds 4 rows" in "\n".join(said)
    assert leaf_state(june, "money") == (True, False)
    record = AuditArchive.objects.get(key=key)
    assert record.detached_at is not None and record.dropped_at is None
    refused = AuditLog.objects.filter(action=Action.AUDIT_ARCHIVED, severity=Severity.ERROR)
    assert [r.metadata["step"] for r in refused] == ["drop_refused"]
    assert not verify()[0]  # the late rows are out of the trail and in no archive yet

    with database.connected_as_owner():
        again = run(
            "audit_archive",
            "--month",
            "2016-06",
            "--class",
            "money",
            "--source-table",
            table,
            "--replace",
        )
    done = retention_as_owner(date(2027, 1, 1), said)

    assert again[0], again[1]
    assert done == 0, said
    assert leaf_state(june, "money") == (False, False)
    assert [json.loads(line)["id"] for line in jsonl(key)][-2:] == [r.pk for r in late]
    ok, out = verify()
    assert ok, out
