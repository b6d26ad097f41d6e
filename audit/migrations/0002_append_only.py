"""The database itself refuses UPDATE and DELETE on the audit table (PostgreSQL).

The trigger (audit.append_only) binds the table's owner too. TRUNCATE, DDL and the trigger itself
are kept from the application role by its grants: `manage.py db_roles` gives it INSERT and SELECT
only here (planbeta/db_roles.py). SQLite (the local quick start) gets no trigger.
"""

from django.db import migrations

from audit.append_only import operations


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(*operations("audit_auditlog"))]
