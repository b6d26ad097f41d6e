import datetime
import secrets
import uuid
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from accounts.services import user_create
from audit.context import audit_context
from audit.models import Source
from invoices.services import invoice_generate
from leads.models import Lead
from leads.services import lead_create
from payments.models import Batch
from payments.services import pay_and_convert

DEMO_USERS = [
    ("founder@planbeta.example", "Anita Founder", Role.FOUNDER),
    ("marketing@planbeta.example", "Rahul Marketing", Role.MARKETING),
    ("teacher@planbeta.example", "Greta Teacher", Role.TEACHER),
]

DEMO_LEADS = [
    (
        "Arjun Nair",
        "+919847012345",
        "arjun.nair@example.com",
        "META_ADS",
        "INTERESTED",
        "HOT",
        "A1",
    ),
    (
        "Fathima Rahman",
        "+919746123456",
        "fathima.r@example.com",
        "INSTAGRAM",
        "TRIAL_SCHEDULED",
        "WARM",
        "A1_HYBRID_MALAYALAM",
    ),
    ("Vishnu Menon", "+918089234567", "", "GOOGLE", "NEW", "COLD", "A2"),
    (
        "Sneha Pillai",
        "+919562345678",
        "sneha.pillai@example.com",
        "REFERRAL",
        "TRIAL_ATTENDED",
        "HOT",
        "B1",
    ),
    (
        "Joel Thomas",
        "+917012456789",
        "joel.t@example.com",
        "ORGANIC",
        "CONTACTED",
        "WARM",
        "SPOKEN_GERMAN",
    ),
    ("Meera Krishnan", "+919895567890", "meera.k@example.com", "META_ADS", "LOST", "COLD", "B2"),
]


class Command(BaseCommand):
    help = "Create demo accounts (printing their passwords) and a few leads. Safe to run again."

    def handle(self, *args, **options):
        with audit_context(source=Source.COMMAND, label="seed_demo"), transaction.atomic():
            lines = []
            for email, name, role in DEMO_USERS:
                password = f"demo-{secrets.token_urlsafe(9)}"
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = user_create(email=email, name=name, role=role, password=password)
                else:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                lines.append(f"  {role:<9} {email:<28} {password}")
            founder = User.objects.get(email=DEMO_USERS[0][0])
            if not Lead.objects.exists():
                today = timezone.localdate()
                for i, (name, wa, email, source, status, quality, level) in enumerate(DEMO_LEADS):
                    lead_create(
                        actor=founder,
                        name=name,
                        whatsapp=wa,
                        email=email,
                        source=source,
                        status=status,
                        quality=quality,
                        interested_level=level,
                        follow_up_date=today + datetime.timedelta(days=i + 1),
                    )
                _seed_money(founder)
        self.stdout.write("Demo accounts (log in at http://127.0.0.1:8000/accounts/login/):")
        for line in lines:
            self.stdout.write(line)


def _seed_money(actor: User) -> None:
    """Two open invoices and one lead already converted, made the way staff would make them."""
    batch, _ = Batch.objects.get_or_create(
        code="A1-JAN-EVE-01", defaults={"level": "A1", "timing": "EVENING", "seats": 10}
    )
    Batch.objects.get_or_create(
        code="B1-FEB-MOR-01", defaults={"level": "B1", "timing": "MORNING", "seats": 12}
    )
    course = "German Language Course"
    arjun = Lead.objects.get(whatsapp="+919847012345")
    invoice = invoice_generate(
        lead=arjun,
        currency="EUR",
        items=[{"description": course, "amount": Decimal("134.00"), "level": "A1"}],
        payable_now=Decimal("100.00"),
        actor=actor,
    )
    pay_and_convert(
        invoice=invoice,
        amount=Decimal("100.00"),
        method="UPI",
        transaction_id="UPI-DEMO-0001",
        batch_id=batch.pk,
        idempotency_key=f"seed-{uuid.uuid4()}",
        actor=actor,
    )
    invoice_generate(
        lead=Lead.objects.get(whatsapp="+919562345678"),
        currency="INR",
        items=[{"description": course, "amount": Decimal("18000.00"), "level": "B1"}],
        discount=Decimal("1000.00"),
        payable_now=Decimal("5000.00"),
        actor=actor,
    )
    invoice_generate(
        lead=Lead.objects.get(whatsapp="+919746123456"),
        currency="INR",
        items=[
            {"description": course, "amount": Decimal("10000.00"), "level": "A1_HYBRID_MALAYALAM"}
        ],
        actor=actor,
    )
