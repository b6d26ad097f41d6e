import pytest
from celery import shared_task

from audit.context import audit_context
from audit.models import Action, AuditLog, Source
from audit.services import AuditEntry, audit_record


@shared_task(name="tests.write_audit_row")
def write_audit_row() -> None:
    audit_record(AuditEntry(Action.SYSTEM_ERROR, description="from a task"))


@pytest.mark.django_db
def test_rows_written_by_a_task_say_so_and_keep_the_queuing_request_id():
    with audit_context(source=Source.COMMAND, label="queuer", request_id="req-queued"):
        write_audit_row.delay()

    row = AuditLog.objects.get()
    assert (row.source, row.metadata["context"], row.request_id) == (
        "TASK",
        "tests.write_audit_row",
        "req-queued",
    )
