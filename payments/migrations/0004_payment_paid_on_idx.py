"""An index on the day a payment was received: the home page's "Payments today" reads one day."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("payments", "0003_payment_paid_on")]

    operations = [
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(fields=["paid_on"], name="payment_paid_on_idx"),
        ),
    ]
