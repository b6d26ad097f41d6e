"""The record of an outage survives the outage: a failure row that cannot be written while the
database is away is kept on disk (audit.spool) and written to the trail once it answers, exactly
once — whoever replays, however often, even after a replay that died half-way."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import uuid
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from audit import spool
from audit.models import Action, AuditLateRow, AuditLog, Severity
from audit.selectors import audit_log_page
from audit.services import AuditEntry, audit_record_independent
from audit.tasks import replay_spool
from planbeta.celery import app as celery_app
from tests.concurrency import run_concurrently
from tests.dbproxy import routed_through


def _spool_rows(n: int, *, action: str = Action.API_ERROR) -> list[uuid.UUID]:
    """Rows as audit_record_independent hands them to the spool (a spool id drawn up front)."""
    ids = []
    for i in range(n):
        row = AuditLog(
            action=action,
            severity=Severity.ERROR,
            description=f"failed while the database was away #{i}",
            request_id=f"req-{i}",
            metadata={"invoiceNumber": f"PB-2026-{i:04d}", "paidAmount": "100.00"},
            spool_id=uuid.uuid4(),
        )
        assert spool.keep(row, reason="OperationalError") == str(row.spool_id)
        ids.append(row.spool_id)
    return ids


def _spool_files() -> list[str]:
    directory = spool.spool_directory()
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


@pytest.fixture
def database_refusing(settings):
    """Point the default and audit connections at a local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = {}
    for alias in ("default", "audit"):
        conn = connections[alias]
        saved[alias] = dict(conn.settings_dict)
        conn.close()
        conn.settings_dict.update(HOST="127.0.0.1", PORT=str(port))
    yield
    for alias, original in saved.items():
        connections[alias].close()
        connections[alias].settings_dict.update(original)


# --- keeping ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_failure_row_the_database_cannot_take_is_kept_and_logged_without_its_content(
    database_refusing, caplog
):
    caplog.set_level(logging.INFO)

    row = audit_record_independent(
        AuditEntry(
            Action.LEAD_TO_STUDENT_CONVERSION,
            severity=Severity.CRITICAL,
            description="Conversion of Asha Rao failed",
            metadata={"leadName": "Asha Rao", "paidAmount": "100.00"},
        ),
    )

    assert row is None
    [(path, rows)] = spool.pending()
    assert rows == 1
    record = json.loads(path.read_text())
    assert record["fields"]["description"] == "Conversion of Asha Rao failed"
    assert record["fields"]["metadata"] == {"leadName": "Asha Rao", "paidAmount": "100.00"}
    assert record["reason"] == "OperationalError"
    assert f"spooled={record['spoolId']}" in caplog.text
    assert "Asha" not in caplog.text
    assert path.stat().st_mode & 0o077 == 0  # readable by the app's user only


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_replay_while_the_database_is_still_away_keeps_every_row(database_refusing):
    _spool_rows(2)

    with pytest.raises(Exception, match=r"connect|refused"):
        spool.replay()

    assert [rows for _, rows in spool.pending()] == [2]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_row_refused_for_another_reason_is_not_spooled(caplog):
    # A value the table refuses is a bug: replaying it later would fail the same way.
    row = audit_record_independent(
        AuditEntry(Action.API_ERROR, severity=Severity.ERROR, description="x", entity_id="9" * 80)
    )

    assert row is None
    assert spool.pending() == []
    assert "spooled=" not in caplog.text


# --- replaying -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_replay_writes_each_spooled_row_once_with_its_original_time_and_empties_the_spool():
    ids = _spool_rows(3)
    [(path, _)] = spool.pending()
    lines = path.read_text().splitlines()
    spooled_at = [json.loads(line)["fields"]["created_at"] for line in lines]

    assert spool.replay() == 3
    assert spool.replay() == 0

    rows = AuditLog.objects.order_by("request_id")
    assert [r.spool_id for r in rows] == ids
    assert [r.request_id for r in rows] == ["req-0", "req-1", "req-2"]
    assert rows[1].metadata == {"invoiceNumber": "PB-2026-0001", "paidAmount": "100.00"}
    assert [r.created_at.isoformat() for r in rows] == spooled_at
    assert _spool_files() == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_row_replayed_hours_after_it_happened_is_a_late_row_and_first_on_the_feed():
    before = AuditLog.objects.create(action=Action.LOGIN, description="on time")
    happened = timezone.now() - timedelta(hours=5)
    row = AuditLog(
        action=Action.API_ERROR,
        severity=Severity.ERROR,
        description="failed while the database was away",
        created_at=happened,
        spool_id=uuid.uuid4(),
    )
    spool.keep(row, reason="OperationalError")

    assert spool.replay() == 1

    replayed = AuditLog.objects.get(spool_id=row.spool_id)
    assert replayed.created_at == happened
    # Its id is newer than every row written before the replay, its time five hours older: the
    # trigger keeps it apart, and the feed (newest id first) still shows it first.
    assert replayed.id > before.id
    assert list(
        AuditLateRow.objects.filter(id=replayed.id).values_list("created_at", flat=True)
    ) == [happened]
    assert [log.id for log in audit_log_page(limit=2).logs] == [replayed.id, before.id]
    assert not AuditLateRow.objects.filter(id=before.id).exists()


@pytest.mark.django_db
def test_a_replay_that_died_after_inserting_and_before_removing_its_file_writes_nothing_twice():
    _spool_rows(2)
    [(path, _)] = spool.pending()
    copy = path.read_bytes()

    assert spool.replay() == 2
    # The state a replayer leaves when it dies between its INSERT and the unlink: its claimed
    # file is still there (with no lock held, since its process is gone).
    (path.parent / f"{path.stem}.deadbeef0000{spool.CLAIMED_SUFFIX}").write_bytes(copy)
    assert spool.replay() == 2

    assert AuditLog.objects.count() == 2
    assert _spool_files() == []


@pytest.mark.django_db
def test_a_row_whose_first_attempt_did_commit_is_not_written_again():
    # The reply to COMMIT was lost: the row is in the table and its copy in the spool. Both are
    # the one row audit_record_independent built, created_at and action included: on PostgreSQL
    # the unique index is on (spool_id, created_at, action), the partitions' keys.
    [spool_id] = _spool_rows(1)
    [(path, _)] = spool.pending()
    fields = json.loads(path.read_text())["fields"]
    AuditLog.objects.create(
        action=Action.API_ERROR,
        description="x",
        spool_id=spool_id,
        created_at=datetime.fromisoformat(fields["created_at"]),
    )

    spool.replay()

    assert list(AuditLog.objects.values_list("spool_id", flat=True)) == [spool_id]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_failure_row_whose_commit_reply_was_lost_is_in_the_trail_once(db_proxy):
    with routed_through(
        db_proxy,
        ("default", "audit"),
        call_deadline=1.0,
        statement_timeout=0.8,
        lock_timeout=0.5,
        idle_in_transaction_timeout=5,
    ):
        # The INSERT passes; the COMMIT is held until the client has given up waiting for it.
        db_proxy.stall_on(b"COMMIT")
        row = audit_record_independent(
            AuditEntry(Action.API_ERROR, severity=Severity.ERROR, description="failed")
        )
        assert row is None
        assert [rows for _, rows in spool.pending()] == [1]
        # Now the held COMMIT reaches the server: the first attempt did commit after all. The
        # replay's INSERT waits on the unique index until it has, then writes nothing.
        db_proxy.resume()
        connections.close_all()
        spool.replay()

    assert AuditLog.objects.filter(action=Action.API_ERROR).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_replays_at_once_write_each_row_once():
    _spool_rows(50)
    [(path, _)] = spool.pending()
    # Two replayers each holding a copy of the same rows, so both really insert them: only the
    # unique index on spool_id can keep the second from writing them again.
    shutil.copy(path, path.parent / f"{path.stem}.other00000000{spool.CLAIMED_SUFFIX}")
    results = run_concurrently([spool.replay, spool.replay])

    assert all(isinstance(r, int) for r in results), results
    assert AuditLog.objects.count() == 50
    assert AuditLog.objects.values("spool_id").distinct().count() == 50
    assert _spool_files() == []


@pytest.mark.django_db
def test_a_torn_line_is_set_aside_and_the_other_rows_are_replayed():
    _spool_rows(1)
    [(path, _)] = spool.pending()
    with path.open("ab") as f:
        f.write(b'{"spoolId": "cut-off-by-a-cra')  # a process died mid-append
    _spool_rows(1)  # the next append still starts on its own line

    assert spool.replay() == 2

    assert AuditLog.objects.count() == 2
    [rejected] = _spool_files()
    assert rejected.endswith(spool.REJECTED_SUFFIX)
    assert (path.parent / rejected).read_bytes() == b'{"spoolId": "cut-off-by-a-cra\n'


@pytest.mark.django_db
def test_the_next_successful_independent_write_replays_the_spool():
    _spool_rows(2)

    audit_record_independent(AuditEntry(Action.LOGIN, severity=Severity.INFO, description="back"))

    assert AuditLog.objects.count() == 3
    assert spool.pending() == []


@pytest.mark.django_db
def test_beat_replays_the_spool_every_half_minute():
    _spool_rows(1)

    replay_spool.delay()

    assert AuditLog.objects.count() == 1
    entry = celery_app.conf.beat_schedule["audit-replay-spool"]
    assert (entry["task"], entry["schedule"]) == ("audit.replay_spool", 30.0)


@pytest.mark.django_db
def test_the_audit_spool_command_shows_what_waits_and_replays_it(capsys):
    _spool_rows(2)

    call_command("audit_spool")
    shown = capsys.readouterr().out
    call_command("audit_spool", "--replay")
    replayed = capsys.readouterr().out

    assert "2 rows waiting" in shown
    assert "replayed 2 rows" in replayed
    assert "0 rows waiting" in replayed
    assert AuditLog.objects.count() == 2
