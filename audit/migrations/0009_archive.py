"""The record of each archive of old audit rows (audit.archive): what was archived, where, its
hashes, and how far retention has taken it (verified, detached, dropped).

And the money class gains AUDIT_ARCHIVED (audit/retention.py). Partition bounds are fixed when a
month is created (0008), so on PostgreSQL the functions that create months are installed again
with the new lists, and each money leaf is detached and attached again with its new bound (no
AUDIT_ARCHIVED row exists before this migration, so no `other` leaf holds one). Reversible while
no AUDIT_ARCHIVED row exists (a money leaf holding one cannot take the old bound back).
"""

import importlib

from django.db import migrations, models

from audit import partitions

PARTITIONED = importlib.import_module("audit.migrations.0008_partitions")
BEFORE = PARTITIONED.CLASS_ACTIONS
# As at this migration: a later change of class comes with its own migration.
CLASS_ACTIONS = {**BEFORE, "money": BEFORE["money"] | {"AUDIT_ARCHIVED"}}


def _rebound(class_actions):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            (schema,) = cursor.fetchone()
            schema_editor.execute(
                partitions.functions_sql(class_actions=class_actions, schema=schema), params=None
            )
            money = ", ".join("'" + a + "'" for a in sorted(class_actions["money"]))
            for leaf in partitions.list_partitions(using=schema_editor.connection.alias):
                if leaf.retention_class != "money" or not leaf.attached:
                    continue
                parent = partitions.month_table(leaf.month)
                cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {leaf.table}")
                cursor.execute(
                    f"ALTER TABLE {parent} ATTACH PARTITION {leaf.table} FOR VALUES IN ({money})"
                )

    return apply


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0008_partitions'),
    ]

    operations = [
        migrations.RunPython(_rebound(CLASS_ACTIONS), _rebound(BEFORE)),
        migrations.CreateModel(
            name='AuditArchive',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=255, unique=True)),
                ('retention_class', models.CharField(max_length=16)),
                ('month', models.DateField()),
                ('source_table', models.CharField(max_length=63)),
                ('row_count', models.BigIntegerField()),
                ('first_id', models.BigIntegerField(null=True)),
                ('last_id', models.BigIntegerField(null=True)),
                ('manifest_sha256', models.CharField(max_length=64)),
                ('jsonl_sha256', models.CharField(max_length=64)),
                ('csv_sha256', models.CharField(max_length=64)),
                ('seal_digest', models.CharField(max_length=64)),
                ('seal_sum', models.CharField(max_length=64)),
                ('first_seal_seq', models.BigIntegerField(null=True)),
                ('last_seal_seq', models.BigIntegerField(null=True)),
                ('archived_at', models.DateTimeField()),
                ('verified_at', models.DateTimeField(null=True)),
                ('detached_at', models.DateTimeField(null=True)),
                ('detached_table', models.CharField(blank=True, max_length=63)),
                ('dropped_at', models.DateTimeField(null=True)),
            ],
            options={
                'ordering': ['month', 'retention_class'],
                'constraints': [models.UniqueConstraint(fields=('retention_class', 'month'), name='audit_archive_unit')],
            },
        ),
    ]
