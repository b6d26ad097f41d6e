"""Rewrite the students' WhatsApp numbers in E.164 (see leads/migrations/_phones.py).

Students may not share a number, and two spellings of one number (`+4915166419430` and
`4915166419430`) are exactly how two students came to share one. Rewriting both would break
the unique index and stop the deploy; rewriting neither would keep the rule broken in the
open. So per number: the student who already has the E.164 spelling keeps it, else the
earliest student gets it; every other student with that number is left as they were, listed
in the summary audit row (WARNING) and on the console, for staff to correct by hand. The
check at conversion compares E.164 numbers, so a new student can no longer join them.
"""

from collections import defaultdict

from django.db import migrations

from leads.migrations._phones import BATCH, audit_row, canonical, summary_row, write_audit

MIGRATION = "payments.0002_student_whatsapp_e164"


def forwards(apps, schema_editor):
    Student = apps.get_model("payments", "Student")
    by_number, left = defaultdict(list), []
    for student in Student.objects.order_by("created_at", "pk").iterator(chunk_size=BATCH):
        after = canonical(student.whatsapp)
        if after is None:
            left.append(
                {
                    "studentPk": student.pk,
                    "studentId": student.student_code,
                    "reason": "not a valid number",
                }
            )
        else:
            by_number[after].append(student)

    changed, rows = [], []
    for number, students in by_number.items():
        keeper = next((s for s in students if s.whatsapp == number), students[0])
        for student in students:
            if student is not keeper:
                left.append(
                    {
                        "studentPk": student.pk,
                        "studentId": student.student_code,
                        "reason": f"same number as {keeper.student_code}",
                    }
                )
        if keeper.whatsapp == number:
            continue
        before, keeper.whatsapp = keeper.whatsapp, number
        changed.append(keeper)
        rows.append(
            audit_row(
                apps,
                action="STUDENT_UPDATED",
                description=f"Student {keeper.student_code} updated: whatsapp (E.164)",
                entity_type="Student",
                entity_id=str(keeper.pk),
                metadata={
                    "studentId": keeper.student_code,
                    "changes": {"whatsapp": {"before": before, "after": number}},
                    "migration": MIGRATION,
                },
            )
        )
    # Every new value is the E.164 spelling of a number nobody else keeps, so no row can
    # collide with another while the batch is written.
    Student.objects.bulk_update(changed, ["whatsapp"], batch_size=BATCH)
    if changed or left:
        rows.append(
            summary_row(
                apps, migration=MIGRATION, what="students", changed=len(changed), left=left
            )
        )
    write_audit(apps, rows)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("leads", "0002_phone_numbers_e164"),
        ("audit", "0004_drop_redundant_time_indexes"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
