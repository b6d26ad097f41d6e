"""Payments get the day the money was received (`paid_on`), which staff may set in the past.

Until now a payment was always entered the moment it was received, so an existing payment's day
is the day it was recorded, in the school's zone (a payment recorded at 00:30 IST belongs to
that Indian day, not to the previous day in UTC). New rows get their day from the service.
"""

from django.db import migrations, models
from django.db.models.functions import TruncDate

SCHOOL_ZONE = "Asia/Kolkata"


def fill_paid_on(apps, schema_editor):
    import zoneinfo

    Payment = apps.get_model("payments", "Payment")
    # One UPDATE in the database, whatever the number of rows; TruncDate converts to the zone.
    # On the migration's own connection, which holds the lock that AddField took.
    Payment.objects.using(schema_editor.connection.alias).update(paid_on=TruncDate("paid_at", tzinfo=zoneinfo.ZoneInfo(SCHOOL_ZONE)))


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_student_whatsapp_e164")]

    operations = [
        migrations.AddField(
            model_name="payment", name="paid_on", field=models.DateField(null=True)
        ),
        migrations.RunPython(fill_paid_on, migrations.RunPython.noop),
        migrations.AlterField(model_name="payment", name="paid_on", field=models.DateField()),
    ]
