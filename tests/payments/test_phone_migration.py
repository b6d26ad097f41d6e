"""The data migrations that rewrite stored numbers in E.164 (leads 0002, payments 0002), run
for real: the tables are taken back to before them, filled as the old code left them, and
migrated forward."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditLog
from leads.models import Lead
from payments.models import Student
from tests.database import migrate_as_owner, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("leads", "0001_initial"), ("payments", "0001_initial")]
AFTER = [("leads", "0002_phone_numbers_e164"), ("payments", "0002_student_whatsapp_e164")]
LONG_AGO = timezone.make_aware(datetime.datetime(2026, 1, 5, 10, 0))


@pytest.fixture
def old_apps():
    """The models as they were before the migrations, with those migrations unapplied."""
    yield migrate_as_owner(BEFORE)
    migrate_to_latest()


def _lead(apps, whatsapp, phone=""):
    Lead = apps.get_model("leads", "Lead")
    lead = Lead.objects.create(name="Old Lead", whatsapp=whatsapp, phone=phone, source="OTHER")
    # As it was last touched long ago: the migration must not pretend staff edited it.
    Lead.objects.filter(pk=lead.pk).update(updated_at=LONG_AGO)
    return lead


def _student(apps, code, whatsapp, minute):
    Student = apps.get_model("payments", "Student")
    return Student.objects.create(
        student_code=code,
        lead=_lead(apps, whatsapp),
        name=f"Student {code}",
        whatsapp=whatsapp,
        currency="EUR",
        total_amount=Decimal("134.00"),
        created_at=LONG_AGO + datetime.timedelta(minutes=minute),
    )


def test_stored_lead_numbers_are_rewritten_in_e164_and_each_change_is_in_the_trail(old_apps):
    wa_link = _lead(old_apps, "4915166419430")
    indian = _lead(old_apps, "9847012345", phone="04712345678")
    done = _lead(old_apps, "+919847099999")
    junk = _lead(old_apps, "12345")

    migrate_as_owner(AFTER)

    assert dict(Lead.objects.values_list("pk", "whatsapp")) == {
        wa_link.pk: "+4915166419430",
        indian.pk: "+919847012345",
        done.pk: "+919847099999",
        junk.pk: "12345",
    }
    assert Lead.objects.get(pk=indian.pk).phone == "+914712345678"
    assert set(Lead.objects.values_list("updated_at", flat=True)) == {LONG_AGO}
    updates = {
        r.entity_id: r.metadata["changes"] for r in AuditLog.objects.filter(action="LEAD_UPDATED")
    }
    assert updates == {
        str(wa_link.pk): {"whatsapp": {"before": "4915166419430", "after": "+4915166419430"}},
        str(indian.pk): {
            "whatsapp": {"before": "9847012345", "after": "+919847012345"},
            "phone": {"before": "04712345678", "after": "+914712345678"},
        },
    }
    summary = AuditLog.objects.get(action="DATA_MIGRATED")
    assert (summary.severity, summary.source) == ("WARNING", "SYSTEM")
    assert summary.metadata == {
        "migration": "leads.0002_phone_numbers_e164",
        "changed": 2,
        "leftUnchanged": [{"leadId": junk.pk, "field": "whatsapp", "reason": "not a valid number"}],
    }


def test_two_students_sharing_one_number_in_two_spellings_leave_the_later_one_as_it_was(
    old_apps, capsys
):
    _student(old_apps, "STU-2026-0001", "+4915166419430", minute=1)
    second = _student(old_apps, "STU-2026-0002", "4915166419430", minute=2)  # the pair
    third = _student(old_apps, "STU-2026-0003", "919847012345", minute=3)
    fourth = _student(old_apps, "STU-2026-0004", "9847012345", minute=4)
    alone = _student(old_apps, "STU-2026-0005", "9847000001", minute=5)
    junk = _student(old_apps, "STU-2026-0006", "00000", minute=6)

    migrate_as_owner(AFTER)

    assert dict(Student.objects.values_list("student_code", "whatsapp")) == {
        "STU-2026-0001": "+4915166419430",
        "STU-2026-0002": "4915166419430",
        "STU-2026-0003": "+919847012345",
        "STU-2026-0004": "9847012345",
        "STU-2026-0005": "+919847000001",
        "STU-2026-0006": "00000",
    }
    # entity_id is text: ordered as numbers, or "101" would come before "99".
    updated = sorted(
        AuditLog.objects.filter(action="STUDENT_UPDATED"), key=lambda r: int(r.entity_id)
    )
    assert [(r.entity_type, r.entity_id, r.metadata["changes"]) for r in updated] == [
        (
            "Student",
            str(third.pk),
            {"whatsapp": {"before": "919847012345", "after": "+919847012345"}},
        ),
        (
            "Student",
            str(alone.pk),
            {"whatsapp": {"before": "9847000001", "after": "+919847000001"}},
        ),
    ]
    summary = AuditLog.objects.get(
        action="DATA_MIGRATED", metadata__migration__startswith="payments"
    )
    assert summary.severity == "WARNING"
    assert summary.metadata["changed"] == 2
    assert sorted(summary.metadata["leftUnchanged"], key=lambda e: e["studentPk"]) == [
        {
            "studentPk": second.pk,
            "studentId": "STU-2026-0002",
            "reason": "same number as STU-2026-0001",
        },
        {
            "studentPk": fourth.pk,
            "studentId": "STU-2026-0004",
            "reason": "same number as STU-2026-0003",
        },
        {"studentPk": junk.pk, "studentId": "STU-2026-0006", "reason": "not a valid number"},
    ]
    # The summary and the console name students by id, never by their number.
    printed = capsys.readouterr().out
    assert "STU-2026-0002" in printed and "same number as STU-2026-0001" in printed
    assert "4915166419430" not in printed + summary.description + str(summary.metadata)


def test_on_tables_already_in_e164_the_migrations_change_and_record_nothing(old_apps):
    _lead(old_apps, "+919847012345")
    _student(old_apps, "STU-2026-0001", "+4915166419430", minute=1)

    migrate_as_owner(AFTER)

    assert sorted(Lead.objects.values_list("whatsapp", flat=True)) == [
        "+4915166419430",
        "+919847012345",
    ]
    assert AuditLog.objects.count() == 0
