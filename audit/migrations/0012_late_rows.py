"""The rows whose created_at is far from their insert, kept apart so that the other rows' times
bound their ids (audit.timeline)."""

from django.db import migrations, models

from audit.timeline import operations


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0011_notify"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditLateRow",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "db_table": "audit_late_row",
            },
        ),
        migrations.RunPython(*operations()),
    ]
