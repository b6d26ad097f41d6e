import pytest
from django.db import transaction

from audit.context import audit_context
from audit.models import Action, AuditLog, Severity, Source
from audit.services import AuditEntry, audit_record, audit_record_independent, is_audited


class Boom(Exception):
    pass


@pytest.mark.django_db
def test_row_written_inside_a_business_transaction_commits_with_it(founder):
    with transaction.atomic():
        audit_record(
            AuditEntry(
                Action.LEAD_CREATED,
                description="created",
                actor=founder,
                entity_type="Lead",
                entity_id=7,
            ),
        )

    row = AuditLog.objects.get()
    assert (row.action, row.entity_type, row.entity_id, row.user_email) == (
        "LEAD_CREATED",
        "Lead",
        "7",
        "founder@example.com",
    )
    assert (row.user_id, row.user_name, row.user_role) == (founder.pk, "Fiona Founder", "FOUNDER")


@pytest.mark.django_db
def test_row_written_inside_a_business_transaction_rolls_back_with_it(founder):
    with pytest.raises(Boom), transaction.atomic():
        audit_record(AuditEntry(Action.LEAD_CREATED, description="created", actor=founder))
        raise Boom

    assert AuditLog.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_failure_row_survives_rollback_of_the_callers_outer_transaction(founder):
    with pytest.raises(Boom), transaction.atomic():  # e.g. ATOMIC_REQUESTS around the view
        try:
            with transaction.atomic():
                audit_record(AuditEntry(Action.PAYMENT_RECEIVED, description="paid", actor=founder))
                raise Boom("card declined")
        except Boom as exc:
            audit_record_independent(
                AuditEntry(
                    Action.LEAD_TO_STUDENT_CONVERSION,
                    severity=Severity.CRITICAL,
                    description="conversion failed",
                    entity_type="Invoice",
                    entity_id=42,
                    metadata={"invoiceNumber": "PB-2026-0001"},
                    actor=founder,
                    error=exc,
                ),
            )
            raise

    row = AuditLog.objects.get()
    assert row.action == "LEAD_TO_STUDENT_CONVERSION"
    assert row.severity == "CRITICAL"
    assert row.entity_id == "42"
    assert row.error_message == "Boom: card declined"
    assert "raise Boom" in row.error_stack


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_failure_row_without_outer_transaction_is_committed_on_the_main_connection(founder):
    try:
        with transaction.atomic():
            audit_record(AuditEntry(Action.PAYMENT_RECEIVED, description="paid", actor=founder))
            raise Boom("mid-way")
    except Boom as exc:
        audit_record_independent(
            AuditEntry(
                Action.SYSTEM_ERROR, severity=Severity.ERROR, description="failed", error=exc
            )
        )
        assert is_audited(exc)

    assert list(AuditLog.objects.values_list("action", flat=True)) == ["SYSTEM_ERROR"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_failure_to_write_an_independent_row_is_logged_without_secrets_and_not_raised(
    caplog, owner_connection
):
    with owner_connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE audit_auditlog ADD CONSTRAINT test_refuse_login CHECK (action <> 'LOGIN')"
        )
    try:
        row = audit_record_independent(
            AuditEntry(
                Action.LOGIN,
                severity=Severity.INFO,
                description="x logged in",
                metadata={"note": "hunter2-visible-only-in-row"},
            ),
        )
    finally:
        with owner_connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditlog DROP CONSTRAINT test_refuse_login")

    assert row is None
    assert AuditLog.objects.count() == 0
    assert "audit write failed: action=LOGIN severity=INFO error=IntegrityError" in caplog.text
    assert "hunter2" not in caplog.text


@pytest.mark.django_db
def test_secret_metadata_is_redacted_before_it_reaches_the_row():
    audit_record(
        AuditEntry(
            Action.SYSTEM_ERROR,
            description="x",
            metadata={"apiKey": "a", "nested": [{"Authorization": "Bearer b", "amount": "10.00"}]},
        ),
    )
    assert AuditLog.objects.get().metadata == {
        "apiKey": "[REDACTED]",
        "nested": [{"Authorization": "[REDACTED]", "amount": "10.00"}],
    }


@pytest.mark.django_db
def test_rows_outside_a_request_say_which_command_wrote_them():
    with audit_context(source=Source.COMMAND, label="seed_demo") as ctx:
        audit_record(AuditEntry(Action.LEAD_CREATED, description="x"))

    row = AuditLog.objects.get()
    assert (row.source, row.metadata["context"], row.request_id) == (
        "COMMAND",
        "seed_demo",
        ctx.request_id,
    )
    assert row.user_id is None and row.ip_address is None and row.request_path == ""


@pytest.mark.django_db
def test_rows_with_no_context_at_all_are_marked_system():
    audit_record(AuditEntry(Action.SYSTEM_ERROR, description="x"))
    assert AuditLog.objects.get().source == "SYSTEM"


# The trigger holds against the owner of the table too (the application role is refused before
# it fires, by its grants: tests/test_db_roles.py), so these run as the owner, on committed rows.


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_refuses_raw_update_of_an_audit_row_even_by_the_owner(owner_connection):
    audit_record(AuditEntry(Action.LEAD_CREATED, description="original"))
    with (
        pytest.raises(Exception, match="append-only: UPDATE refused"),
        owner_connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditlog SET description = 'forged'")
    assert AuditLog.objects.get().description == "original"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_refuses_raw_delete_of_an_audit_row_even_by_the_owner(owner_connection):
    audit_record(AuditEntry(Action.LEAD_CREATED, description="original"))
    with (
        pytest.raises(Exception, match="append-only: DELETE refused"),
        owner_connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditlog")
    assert AuditLog.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_orm_bulk_update_of_audit_rows_is_refused_too():
    audit_record(AuditEntry(Action.LEAD_CREATED, description="original"))
    with (
        pytest.raises(Exception, match="permission denied for table audit_auditlog"),
        transaction.atomic(),
    ):
        AuditLog.objects.update(severity="INFO")
