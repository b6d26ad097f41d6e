"""The hash chain over the audit trail (audit.chain), on any database: sealing in the order rows
became visible, the canonical content, audit_verify, checkpoints and the auditChain health check.
Tampering through a superuser and concurrent writers are in test_chain_postgres.py."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from audit import chain
from audit.models import Action, AuditLog, AuditSeal, ChainVerification, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent
from monitoring.checks import collect_health
from tests.audit.chain_support import verify, write


def test_the_canonical_columns_are_every_stored_column_of_the_trail():
    # A new column must come with a new format, or old seals would stop verifying.
    stored = tuple(f.column for f in AuditLog._meta.concrete_fields)
    assert sorted(chain.CANONICAL_COLUMNS[chain.FORMAT]) == sorted(stored)


def test_the_canonical_content_is_sorted_compact_utf8_json_with_utc_times():
    content = chain.canonical(
        {
            "metadata": {"b": "1.50", "a": ["ü", None]},
            "created_at": datetime(2026, 12, 1, 17, 30, 5, 120, tzinfo=UTC) + timedelta(hours=0),
            "id": 7,
        }
    )
    assert (
        content
        == (
            '{"created_at":"2026-12-01T17:30:05.000120Z","id":7,'
            '"metadata":{"a":["ü",null],"b":"1.50"}}'
        ).encode()
    )
    digest = chain.seal_hash(
        prev_hash=chain.GENESIS, seq=1, sealed_at=datetime(2026, 12, 1, tzinfo=UTC), content=b"{}"
    )
    expected = hashlib.sha256(
        (chain.GENESIS + "\n1\n2026-12-01T00:00:00.000000Z\n{}").encode()
    ).hexdigest()
    assert digest == expected


@pytest.mark.django_db(transaction=True)
def test_verify_seals_what_is_pending_and_an_intact_chain_exits_zero():
    rows = write(3)

    ok, out = verify()

    assert ok, out
    assert "audit chain intact" in out
    seals = list(AuditSeal.objects.order_by("seq").values_list("seq", "audit_id", "prev_hash"))
    assert [(s, a) for s, a, _ in seals] == [(1, rows[0].pk), (2, rows[1].pk), (3, rows[2].pk)]
    assert seals[0][2] == chain.GENESIS
    last = AuditSeal.objects.get(seq=3)
    assert f"head 3:{last.hash}" in out
    recorded = ChainVerification.objects.get()
    assert (recorded.runner, recorded.intact, recorded.checked) == ("command", True, 3)


@pytest.mark.postgres  # SQLite has one writer: the independent connection would wait for the test
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_row_that_rolled_back_is_never_sealed_and_an_independent_one_is():
    write(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(AuditEntry(Action.LEAD_UPDATED, description="rolled back"))
        kept = audit_record_independent(
            AuditEntry(Action.SYSTEM_ERROR, description="survives", severity=Severity.ERROR)
        )
        raise RuntimeError

    assert chain.seal_pending() == 2

    assert sorted(AuditSeal.objects.values_list("audit_id", flat=True)) == sorted(
        AuditLog.objects.values_list("pk", flat=True)
    )
    assert AuditSeal.objects.filter(audit_id=kept.pk).exists()
    assert not AuditLog.objects.filter(description="rolled back").exists()
    assert verify()[0]


@pytest.mark.django_db(transaction=True)
def test_each_seal_links_the_previous_hash_and_the_rows_content():
    write(2)
    chain.seal_pending()
    first, second = AuditSeal.objects.order_by("seq")
    columns = chain.CANONICAL_COLUMNS[chain.FORMAT]
    stored = AuditLog.objects.values_list(*columns).get(pk=second.audit_id)
    values = dict(zip(columns, stored, strict=True))

    assert second.prev_hash == first.hash
    assert second.hash == chain.seal_hash(
        prev_hash=first.hash, seq=2, sealed_at=second.sealed_at, content=chain.canonical(values)
    )
    assert json.loads(chain.canonical(values))["metadata"] == {
        "amount": "100.00",
        "currency": "EUR",
    }


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_row_records_the_head_and_verify_checks_a_witnessed_head():
    write(2)
    row = chain.write_checkpoint()
    seq, digest, _ = chain.head()
    assert row.action == Action.AUDIT_CHECKPOINT
    assert row.metadata["witness"] == f"{seq}:{digest}" == f"2:{digest}"
    assert row.metadata["sealedRows"] == 2

    ok, out = verify("--checkpoint", f"2:{digest}")
    assert ok, out
    assert f"witnessed head 2:{digest} is in the chain" in out
    assert verify("--checkpoint", digest)[0]  # the hash alone is found by itself

    forged = "f" * 64
    ok, out = verify("--checkpoint", f"2:{forged}")
    assert not ok
    assert f"first broken row: {AuditSeal.objects.get(seq=2).audit_id}" in out
    ok, out = verify("--checkpoint", f"99:{digest}")
    assert not ok
    assert "the chain is shorter than the witnessed head" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "12:xyz"], "--checkpoint: a checkpoint is SEQ:HASH"),
        (["--checkpoint", "x:" + "a" * 64], "SEQ a positive number"),
        (["--since", "yesterday"], "is not a date"),
    ],
)
def test_audit_verify_refuses_bad_arguments_and_writes_nothing(args, message):
    write(1)
    with pytest.raises(CommandError, match=message):
        call_command("audit_verify", *args, stdout=io.StringIO())
    assert not AuditSeal.objects.exists()
    assert not ChainVerification.objects.exists()
    assert AuditLog.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_since_walks_only_the_seals_made_from_that_day(time_machine):
    time_machine.move_to(datetime(2026, 11, 1, 10, tzinfo=UTC), tick=False)
    write(2)
    chain.seal_pending()
    time_machine.move_to(datetime(2026, 11, 20, 10, tzinfo=UTC), tick=False)
    write(3)

    ok, out = verify("--since", "2026-11-15")

    assert ok, out
    assert "checked 3 seals" in out


@pytest.mark.django_db(transaction=True)
def test_audit_checkpoint_command_prints_the_head_to_keep():
    write(1)
    out = io.StringIO()
    call_command("audit_checkpoint", stdout=out)
    _, digest, _ = chain.head()
    assert f"head 1:{digest}" in out.getvalue()
    assert AuditLog.objects.filter(action=Action.AUDIT_CHECKPOINT, source="COMMAND").count() == 1


# --- health -------------------------------------------------------------------------------------


def audit_chain_check() -> tuple[dict, str, int]:
    body, status = collect_health(detailed=True)
    return body["checks"]["auditChain"], body["status"], status


@pytest.mark.django_db
def test_health_before_any_verification_says_so_and_stays_healthy():
    check, _, _ = audit_chain_check()
    assert check == {"status": "healthy", "message": "Not verified yet", "lastVerified": None}


@pytest.mark.django_db(transaction=True)
def test_health_reports_the_latest_verification_and_who_ran_it(django_capture_on_commit_callbacks):
    from audit.tasks import verify_chain

    write(2)
    assert verify_chain() is True
    check, _, _ = audit_chain_check()
    seq, digest, _ = chain.head()
    assert check["status"] == "healthy"
    assert (check["verifiedBy"], check["result"], check["checked"]) == ("beat", "intact", 2)
    assert check["head"] == f"{seq}:{digest}"


@pytest.mark.django_db
def test_a_stale_verification_is_degraded_while_beat_is_expected(settings, time_machine):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    settings.AUDIT_VERIFY_STALE_SECONDS = 3600
    ChainVerification.objects.create(
        runner="beat", verified_at=datetime(2026, 11, 20, 8, tzinfo=UTC), intact=True
    )
    time_machine.move_to(datetime(2026, 11, 20, 8, 59, tzinfo=UTC), tick=False)
    assert audit_chain_check()[0]["status"] == "healthy"
    time_machine.move_to(datetime(2026, 11, 20, 9, 1, tzinfo=UTC), tick=False)
    from monitoring.checks import reset_health_cache

    reset_health_cache()
    check = audit_chain_check()[0]
    assert check["status"] == "degraded"
    assert check["message"] == "Latest verification is 3660 s old"


@pytest.mark.django_db
def test_a_broken_chain_makes_the_check_and_the_whole_health_unhealthy():
    ChainVerification.objects.create(
        runner="command",
        verified_at=datetime.now(UTC),
        intact=False,
        first_broken_id=42,
        problem="row 42 (seal 3) was changed, or its seal forged",
    )
    check, status, http_status = audit_chain_check()
    assert (check["status"], check["firstBrokenRow"], check["result"]) == (
        "unhealthy",
        42,
        "broken",
    )
    assert check["message"] == "Audit chain broken: row 42 (seal 3) was changed, or its seal forged"
    assert (status, http_status) == ("unhealthy", 503)
