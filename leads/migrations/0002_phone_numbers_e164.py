"""Rewrite the leads' WhatsApp and phone numbers in E.164 (see leads/migrations/_phones.py).

Leads may share a number, so nothing can collide here. A number that is not valid is left as
it was and listed: the lead's edit page asks for a valid one the next time it is saved.
"""

from django.db import migrations

from leads.migrations._phones import BATCH, audit_row, canonical, summary_row, write_audit

MIGRATION = "leads.0002_phone_numbers_e164"


def forwards(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    changed, left, rows = [], [], []
    for lead in Lead.objects.order_by("pk").iterator(chunk_size=BATCH):
        changes = {}
        for field in ("whatsapp", "phone"):
            before = getattr(lead, field)
            if not before:
                continue
            after = canonical(before)
            if after is None:
                left.append({"leadId": lead.pk, "field": field, "reason": "not a valid number"})
            elif after != before:
                changes[field] = {"before": before, "after": after}
                setattr(lead, field, after)
        if changes:
            changed.append(lead)
            rows.append(
                audit_row(
                    apps,
                    action="LEAD_UPDATED",
                    description=f"Lead {lead.name} updated: {', '.join(changes)} (E.164)",
                    entity_type="Lead",
                    entity_id=str(lead.pk),
                    metadata={"leadName": lead.name, "changes": changes, "migration": MIGRATION},
                )
            )
    # Not .save(): updated_at (auto_now) would claim that staff touched every lead today.
    Lead.objects.bulk_update(changed, ["whatsapp", "phone"], batch_size=BATCH)
    if changed or left:
        rows.append(
            summary_row(apps, migration=MIGRATION, what="leads", changed=len(changed), left=left)
        )
    write_audit(apps, rows)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0001_initial"),
        ("audit", "0004_drop_redundant_time_indexes"),
    ]

    # Not reversible in meaning (the old spellings are in the audit rows), and nothing needs
    # reversing: E.164 is a spelling the old code accepted too.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
