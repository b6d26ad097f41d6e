"""The hash chain's tables (audit.chain): the seals, the sealer's bookmark, the latest verifications.

The seals are append-only like the trail: on PostgreSQL a trigger refuses UPDATE and DELETE, even
from the owner and under session_replication_role = replica, and `db_roles` gives the application
role INSERT and SELECT only (APPEND_ONLY_MODELS). SQLite gets no trigger.
"""

from django.db import migrations, models

from audit.append_only import operations


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_spool_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
                ("audit_id", models.BigIntegerField(unique=True)),
                ("hash", models.CharField(db_index=True, max_length=64)),
                ("prev_hash", models.CharField(max_length=64)),
                ("sealed_at", models.DateTimeField()),
                ("format", models.PositiveSmallIntegerField(default=1)),
            ],
            options={
                "ordering": ["seq"],
            },
        ),
        migrations.CreateModel(
            name="ChainState",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("horizon_id", models.BigIntegerField(default=0)),
                ("mark_id", models.BigIntegerField(null=True)),
                ("mark_xid", models.BigIntegerField(null=True)),
                ("sealed_at", models.DateTimeField(null=True)),
            ],
        ),
        migrations.CreateModel(
            name="ChainVerification",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("runner", models.CharField(max_length=16, unique=True)),
                ("verified_at", models.DateTimeField()),
                ("intact", models.BooleanField()),
                ("checked", models.BigIntegerField(default=0)),
                ("head_seq", models.BigIntegerField(default=0)),
                ("head_hash", models.CharField(blank=True, max_length=64)),
                ("first_broken_id", models.BigIntegerField(null=True)),
                ("problem", models.TextField(blank=True)),
                ("duration_ms", models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(*operations("audit_auditseal")),
    ]
