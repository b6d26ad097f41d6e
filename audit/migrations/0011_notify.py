"""NOTIFY planbeta_audit at the commit of every transaction that wrote audit rows (audit.notify)."""

from django.db import migrations

from audit.notify import operations


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0010_read_indexes"),
    ]

    operations = [
        migrations.RunPython(*operations()),
    ]
