"""The record of each archive of old audit rows (audit.archive): what was archived, where, its
hashes, and how far retention has taken it (verified, detached, dropped)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0007_partitions'),
    ]

    operations = [
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
