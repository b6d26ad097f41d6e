"""Time to render one invoice PDF (render_invoice_pdf) now, beside the same invoice rendered as
before the Indian-script fallback fonts (DejaVu Sans alone, no shaping). Now, an invoice whose
text has letters of an Indian script loads that script's Noto font and shapes its text; a
Latin-only one renders as before.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/invoice_pdf.py

Creates (and drops) its own test database from DATABASE_URL's name, writes two invoices through
the services (a lead named "Asha Menon" and one named "प्रिया शर्मा", rupees, two items, so the
UPI QR code is drawn too), then renders each BENCH_RUNS times (default 30) after a warm-up, the
variants interleaved run by run so that the machine's load falls on both alike. Prints the median
and the ratio. The "before" variant cannot draw the Devanagari name (its letters are missing from
DejaVu); it is timed all the same, as what the PDF used to cost.
"""

import logging
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()
logging.getLogger("fpdf").setLevel(logging.ERROR)  # "missing glyphs" of the before variant

from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from fpdf import FPDF  # noqa: E402

from accounts.models import Role, User  # noqa: E402
from invoices import pdf  # noqa: E402
from invoices.models import Invoice  # noqa: E402
from invoices.services import invoice_generate  # noqa: E402
from leads.services import lead_create  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
NEW = pdf._InvoiceDocument


class _Before(FPDF):
    """The document class as it was: DejaVu Sans only, no fallback fonts, no shaping."""

    footer = NEW.footer

    def __init__(self, number: str, **_: object) -> None:
        super().__init__(format="A4")
        self.number = number
        self.add_font(pdf.FONT, "", pdf.FONT_DIR / "DejaVuSans.ttf")
        self.add_font(pdf.FONT, "B", pdf.FONT_DIR / "DejaVuSans-Bold.ttf")
        self.set_auto_page_break(auto=True, margin=18)


def main() -> None:
    state = setup_databases(verbosity=0, interactive=False)
    try:
        actor = User.objects.create_user(
            "bench@example.com", "x-Bench-2026!", name="Bench", role=Role.FOUNDER
        )
        invoices = {}
        for i, name in enumerate(("Asha Menon", "प्रिया शर्मा")):
            lead = lead_create(
                actor=actor, name=name, whatsapp=f"+91984700{i:04d}", source="ORGANIC"
            )
            invoice = invoice_generate(
                lead=lead,
                currency="INR",
                items=[
                    {"description": "German A1", "amount": Decimal("14000"), "level": "A1"},
                    {"description": "Study material", "amount": Decimal("1500"), "level": "A1"},
                ],
                discount=Decimal("0"),
                payable_now=None,
                actor=actor,
            )
            invoices[name] = (
                Invoice.objects.prefetch_related("items").select_related("lead").get(pk=invoice.pk)
            )
        print(f"render_invoice_pdf, median of {RUNS} runs each (ms), interleaved")
        for name, invoice in invoices.items():
            times: dict[str, list[float]] = {"before": [], "now": []}
            for _ in range(RUNS + 1):  # the first round warms up
                for variant, cls in (("before", _Before), ("now", NEW)):
                    pdf._InvoiceDocument = cls
                    started = time.perf_counter()
                    pdf.render_invoice_pdf(invoice)
                    times[variant].append((time.perf_counter() - started) * 1000)
            pdf._InvoiceDocument = NEW
            before = statistics.median(times["before"][1:])
            now = statistics.median(times["now"][1:])
            size = len(pdf.render_invoice_pdf(invoice))
            print(
                f"  {name!r:18} before {before:7.1f}   now {now:7.1f}   "
                f"ratio {now / before:4.2f}x   PDF now {size / 1024:.0f} KiB"
            )
    finally:
        teardown_databases(state, verbosity=0)


if __name__ == "__main__":
    main()
