"""Indexes for the reads that must not grow with the table (the admin list, the feed's rarer
filter combinations, free text over descriptions).

The trigram index is PostgreSQL's (pg_trgm, a trusted extension since PostgreSQL 13: the database
owner, who runs migrations, may create it). It indexes UPPER(description) because that is what
Django writes for `description__icontains`, so the ORM's own lookup finds it. On a table
partitioned by month an index created on the parent is created on every partition. SQLite gets
neither the extension nor the index: its icontains reads the rows.
"""

from django.db import migrations, models
from django.db.models.functions import Upper

TRIGRAM_INDEX = "audit_description_trgm_idx"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON audit_auditlog "
        "USING gin (UPPER(description) gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The extension stays: other objects may use it, and it holds no data.
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0009_archive"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="auditlog",
            index=models.Index(
                condition=models.Q(("severity__in", ["ERROR", "CRITICAL"])),
                fields=["entity_type", "-id"],
                name="audit_errors_entity_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="auditlog",
            index=models.Index(
                Upper("user_email"), models.F("id").desc(), name="audit_user_email_idx"
            ),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index),
    ]
