"""payments.0003 gives each existing payment the day it was recorded, in the school's zone,
run for real: payments taken back to 0002, a payment stored as the old code did, migrated."""

import datetime
from decimal import Decimal

import pytest

from payments.models import Payment
from tests.database import migrate_as_owner, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("payments", "0002_student_whatsapp_e164"), ("invoices", "0002_invoice_send_claim")]
AFTER = [("payments", "0003_payment_paid_on")]


@pytest.fixture
def old_apps():
    yield migrate_as_owner(BEFORE)
    migrate_to_latest()


def _old_payment(apps, paid_at, n):
    lead = apps.get_model("leads", "Lead").objects.create(
        name=f"Old {n}", whatsapp=f"+9198470000{n:02d}", source="OTHER"
    )
    money = {"subtotal": Decimal("100"), "total_amount": Decimal("100")}
    invoice = apps.get_model("invoices", "Invoice").objects.create(
        number=f"PB-2026-{n:04d}",
        year=2026,
        sequence=n,
        lead=lead,
        status="PARTIALLY_PAID",
        currency="INR",
        payable_now=Decimal("100"),
        paid_amount=Decimal("40"),
        issue_date=datetime.date(2026, 1, 1),
        due_date=datetime.date(2026, 1, 8),
        **money,
    )
    student = apps.get_model("payments", "Student").objects.create(
        student_code=f"STU-2026-{n:04d}",
        lead=lead,
        name=lead.name,
        whatsapp=lead.whatsapp,
        currency="INR",
        total_amount=Decimal("100"),
        total_paid=Decimal("40"),
    )
    return apps.get_model("payments", "Payment").objects.create(
        student=student,
        invoice=invoice,
        amount=Decimal("40"),
        currency="INR",
        paid_at=paid_at,
        idempotency_key=f"old-key-{n}",
    )


def test_existing_payments_are_dated_the_indian_day_they_were_recorded(old_apps):
    utc = datetime.UTC
    # 19:00 UTC is 00:30 the next day in India; 10:00 UTC is the same day.
    late = _old_payment(old_apps, datetime.datetime(2026, 1, 5, 19, 0, tzinfo=utc), 1)
    midday = _old_payment(old_apps, datetime.datetime(2026, 1, 5, 10, 0, tzinfo=utc), 2)

    migrate_as_owner(AFTER)

    assert dict(Payment.objects.values_list("pk", "paid_on")) == {
        late.pk: datetime.date(2026, 1, 6),
        midday.pk: datetime.date(2026, 1, 5),
    }
