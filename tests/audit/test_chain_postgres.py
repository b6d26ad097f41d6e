"""The hash chain against what only PostgreSQL can show: a superuser who rewrites the trail behind
the application's back, a row that commits after a younger one, and concurrent writers.

Tampering goes through DATABASE_URL's superuser (CI's), the one role that can switch the
append-only triggers off; the application role cannot (tests/test_db_roles.py)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from psycopg import sql

from audit import chain
from audit.models import Action, AuditLog, AuditSeal, ChainState, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent
from monitoring.checks import collect_health
from tests import database
from tests.audit.chain_support import verify, write
from tests.concurrency import run_concurrently
from tests.factories import make_token
from tests.money_factories import make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

TRIGGER = "audit_auditlog_append_only"
SEAL_TRIGGER = "audit_auditseal_append_only"


@pytest.fixture
def superuser(django_db_setup):
    """A superuser's autocommit connection to the test database."""
    roles = database.ROLES
    if roles is None or roles.superuser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs the suite with a superuser's DATABASE_URL.")
        pytest.skip("needs DATABASE_URL to name a superuser")
    with database.connect_as_superuser(dbname=connection.settings_dict["NAME"]) as conn:
        try:
            yield conn
        finally:
            # The guards back for the next test, even if this one failed with them off.
            with guards_off(conn):
                pass


def seal_until_horizon(at_least: int, *, timeout: float = 60) -> None:
    """Run the sealer until its horizon passes `at_least`: it waits for every transaction of the
    server that was running when it saw those ids (other test runs share the server)."""
    deadline = time.monotonic() + timeout
    while True:
        chain.seal_batch()
        if ChainState.objects.get(pk=1).horizon_id >= at_least:
            return
        assert time.monotonic() < deadline, "the sealer's horizon did not move"
        time.sleep(0.05)


def unhealthy_naming(row_id: int) -> None:
    body, status = collect_health(detailed=True)
    check = body["checks"]["auditChain"]
    assert (status, body["status"], check["status"]) == (503, "unhealthy", "unhealthy")
    assert check["firstBrokenRow"] == row_id


def broken_rows_alerted(row_id: int) -> None:
    [row] = AuditLog.objects.filter(action=Action.AUDIT_CHAIN_BROKEN)
    assert row.severity == Severity.CRITICAL
    assert row.metadata["firstBrokenRow"] == row_id


@contextmanager
def guards_off(conn):
    """The append-only triggers switched off, as only a superuser (or the owner) can."""
    conn.execute(f"ALTER TABLE audit_auditlog DISABLE TRIGGER {TRIGGER}")
    conn.execute(f"ALTER TABLE audit_auditseal DISABLE TRIGGER {SEAL_TRIGGER}")
    yield conn
    conn.execute(f"ALTER TABLE audit_auditlog ENABLE ALWAYS TRIGGER {TRIGGER}")
    conn.execute(f"ALTER TABLE audit_auditseal ENABLE ALWAYS TRIGGER {SEAL_TRIGGER}")


# --- tampering ----------------------------------------------------------------------------------


def test_an_amount_changed_with_the_trigger_disabled_is_named_by_verify_and_health(superuser):
    rows = write(3)
    assert verify()[0]
    target = rows[1].pk

    with guards_off(superuser):
        superuser.execute(
            "UPDATE audit_auditlog SET metadata = jsonb_set(metadata, '{amount}', '\"1.00\"')"
            " WHERE id = %s",
            [target],
        )

    ok, out = verify()
    assert not ok
    assert f"first broken row: {target}" in out
    assert "was changed, or its seal forged" in out
    unhealthy_naming(target)
    broken_rows_alerted(target)
    # Found again: the same break is not announced twice.
    assert not verify()[0]
    broken_rows_alerted(target)


def test_a_deleted_row_is_named_by_verify_and_health(superuser):
    rows = write(3)
    assert verify()[0]
    target = rows[0].pk

    with guards_off(superuser):
        superuser.execute("DELETE FROM audit_auditlog WHERE id = %s", [target])

    ok, out = verify()
    assert not ok
    assert f"row {target} (seal 1) was removed" in out
    assert f"first broken row: {target}" in out
    unhealthy_naming(target)


def test_a_row_and_its_seal_removed_together_break_the_next_link(superuser):
    rows = write(3)
    assert verify()[0]

    with guards_off(superuser):
        superuser.execute("DELETE FROM audit_auditseal WHERE seq = 2")
        superuser.execute("DELETE FROM audit_auditlog WHERE id = %s", [rows[1].pk])

    ok, out = verify()
    assert not ok
    assert "seals 2-2 are missing before seal 3" in out
    assert f"first broken row: {rows[2].pk}" in out


def test_a_row_inserted_with_a_forged_seal_is_named(superuser):
    write(2)
    assert verify()[0]
    seq, head, _ = chain.head()
    (forged_id,) = superuser.execute(
        "INSERT INTO audit_auditlog (action, severity, description, source, user_email,"
        " user_name, user_role, user_agent, request_path, request_method, request_id,"
        " entity_type, entity_id, metadata, error_message, error_stack, created_at)"
        " VALUES ('PAYMENT_RECEIVED', 'INFO', 'forged', 'SYSTEM', '', '', '', '', '', '', '',"
        " 'Payment', '9', '{\"amount\": \"5000.00\"}', '', '', now()) RETURNING id"
    ).fetchone()
    # The forger links to the real head but cannot know the canonical form the hash covers.
    forged = hashlib.sha256(f"{head}forged".encode()).hexdigest()
    superuser.execute(
        "INSERT INTO audit_auditseal (seq, audit_id, hash, prev_hash, sealed_at, format)"
        " VALUES (%s, %s, %s, %s, now(), 1)",
        [seq + 1, forged_id, forged, head],
    )

    ok, out = verify()
    assert not ok
    assert f"first broken row: {forged_id}" in out
    unhealthy_naming(forged_id)


def test_a_row_inserted_behind_the_sealers_back_is_reported_as_unsealed(superuser):
    write(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        gap = audit_record(AuditEntry(Action.LEAD_UPDATED, description="rolled back")).pk
        raise RuntimeError
    rows = write(2)
    seal_until_horizon(rows[-1].pk)
    assert verify()[0]

    # An old id that the trail never held, as if the row had always been there.
    superuser.execute(
        "INSERT INTO audit_auditlog (id, action, severity, description, source, user_email,"
        " user_name, user_role, user_agent, request_path, request_method, request_id,"
        " entity_type, entity_id, metadata, error_message, error_stack, created_at)"
        " VALUES (%s, 'PAYMENT_RECEIVED', 'INFO', 'slipped in', 'SYSTEM', '', '', '', '', '',"
        " '', '', 'Payment', '9', '{}', '', '', now() - interval '1 day')",
        [gap],
    )

    ok, out = verify()
    assert not ok
    assert "committed rows have no seal, below the sealer's horizon" in out
    assert f"first broken row: {gap}" in out
    assert not AuditSeal.objects.filter(audit_id=gap).exists()
    unhealthy_naming(gap)


def test_a_truncated_and_refilled_trail_passes_alone_and_fails_the_witnessed_checkpoint(superuser):
    rows = write(4)
    checkpoint = chain.write_checkpoint()
    old_head = checkpoint.metadata["witness"]
    assert verify("--checkpoint", old_head)[0]
    kept = list(AuditLog.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk").values())

    # Everything rewritten: both tables emptied, the rows put back (one amount lowered, the
    # checkpoint row left out) and a new chain computed over them.
    superuser.execute("TRUNCATE audit_auditlog, audit_auditseal, audit_chainstate")
    for values in kept:
        if values["id"] == rows[2].pk:
            values["metadata"] = {**values["metadata"], "amount": "10.00"}
        values["metadata"] = json.dumps(values["metadata"])
        insert = sql.SQL("INSERT INTO audit_auditlog ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )
        superuser.execute(insert, list(values.values()))
    chain.seal_pending()

    assert verify()[0]  # the chain alone cannot tell: that is what the witnesses are for
    ok, out = verify("--checkpoint", old_head)
    assert not ok
    assert old_head.startswith("4:")
    assert f"seal 4 is not the witnessed head {old_head[2:]}" in out
    assert f"first broken row: {rows[3].pk}" in out
    unhealthy_naming(rows[3].pk)


def test_a_chain_recomputed_over_a_changed_row_contradicts_the_checkpoint_rows(superuser):
    rows = write(3)
    chain.write_checkpoint()  # records head 3
    write(1)
    assert verify()[0]

    # The seals thrown away and recomputed over a changed row; the checkpoint row left in place.
    with guards_off(superuser):
        superuser.execute("TRUNCATE audit_auditseal, audit_chainstate")
        superuser.execute(
            "UPDATE audit_auditlog SET description = 'edited' WHERE id = %s", [rows[1].pk]
        )
    chain.seal_pending()

    ok, out = verify()
    assert not ok
    assert "seal 3 differs from the head a checkpoint row recorded" in out
    assert f"first broken row: {rows[2].pk}" in out


def test_the_seal_table_refuses_update_and_delete_even_from_its_owner(owner_connection):
    write(1)
    chain.seal_pending()
    for statement in ("UPDATE audit_auditseal SET hash = 'x'", "DELETE FROM audit_auditseal"):
        with (
            pytest.raises(Exception, match="audit_auditseal is append-only"),
            owner_connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AuditSeal.objects.count() == 1


# --- commit order and concurrency ---------------------------------------------------------------


def test_a_row_that_commits_after_a_younger_one_is_sealed_after_it_and_never_skipped():
    with transaction.atomic(using="audit"):
        older = AuditLog.objects.using("audit").create(action="LEAD_UPDATED", description="slow")
        younger = write(1)[0]
        assert older.pk < younger.pk
        for _ in range(5):
            chain.seal_batch()
        # The older row's transaction is still running: the horizon stays below it.
        assert ChainState.objects.get().horizon_id < older.pk
        assert list(AuditSeal.objects.values_list("audit_id", flat=True)) == [younger.pk]

    seal_until_horizon(younger.pk)
    assert list(AuditSeal.objects.order_by("seq").values_list("audit_id", flat=True)) == [
        younger.pk,
        older.pk,
    ]
    assert verify()[0]


def test_twenty_concurrent_conversions_and_independent_error_rows_give_one_valid_chain(marketing):
    invoices = [make_invoice(actor=marketing, amounts=("134.00",)) for _ in range(20)]
    token = make_token(marketing)

    def convert(invoice):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(
            f"/api/invoices/{invoice.pk}/pay-and-convert",
            json.dumps({"paidAmount": "100.00", "idempotencyKey": f"chain-{invoice.pk:06d}"}),
            content_type="application/json",
        ).status_code

    def fail(i):
        # A business change that rolls back, with its failure row written independently.
        try:
            with transaction.atomic():
                audit_record(AuditEntry(Action.LEAD_UPDATED, description="rolled back"))
                audit_record_independent(
                    AuditEntry(
                        Action.SYSTEM_ERROR, description=f"failure {i}", severity=Severity.ERROR
                    )
                )
                raise RuntimeError
        except RuntimeError:
            return "failed"

    stop = threading.Event()

    def sealer():
        # Seals while the writers write, as beat does.
        while not stop.is_set():
            chain.seal_batch()
        connections.close_all()

    sealing = threading.Thread(target=sealer)
    sealing.start()
    try:
        results = run_concurrently(
            [lambda i=i: convert(i) for i in invoices] + [lambda i=i: fail(i) for i in range(10)]
        )
    finally:
        stop.set()
        sealing.join(30)

    assert results == [201] * 20 + ["failed"] * 10
    ok, out = verify()
    assert ok, out
    ids = sorted(AuditLog.objects.values_list("pk", flat=True))
    seals = list(AuditSeal.objects.order_by("seq").values_list("seq", "audit_id"))
    assert [seq for seq, _ in seals] == list(range(1, len(ids) + 1))
    assert sorted(audit_id for _, audit_id in seals) == ids
    assert AuditLog.objects.filter(action="LEAD_TO_STUDENT_CONVERSION").count() == 20
    assert AuditLog.objects.filter(action="SYSTEM_ERROR").count() == 10
    assert not AuditLog.objects.filter(description="rolled back").exists()
