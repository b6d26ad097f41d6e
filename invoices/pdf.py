"""The invoice as a PDF (fpdf2, pure Python): what the customer reads, so it says the real
status, what was paid and what is due now, how to pay (bank transfer, UPI with its QR code), in
the same money format as the pages (core.money.format_money), with page numbers.

The font is DejaVu Sans, shipped in invoices/fonts with its licence: the PDF's built-in fonts
cover Latin-1 only, which has no rupee sign and no Indian script a name may be written in.
Letters DejaVu lacks come from the Noto Sans fonts of India's main scripts (invoices/fonts/noto,
OFL), fpdf2's fallback fonts; HarfBuzz (uharfbuzz) shapes the text, without which Devanagari or
Tamil letters would stand apart instead of joining into syllables."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from fpdf import FPDF, FontFace

from core.money import format_money, money_str
from core.timefmt import format_date
from invoices.models import Invoice, InvoiceItem, InvoiceStatus
from leads.validators import format_phone

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
# The scripts of India's main languages (Hindi, Marathi and Nepali are Devanagari; Assamese is
# written in the Bengali script; Punjabi in Gurmukhi; Odia in Oriya).
# Each with its Unicode block. Regular only: names and descriptions are set in the regular
# weight, and a bold heading borrows the regular face.
FALLBACK_SCRIPTS = {
    "Devanagari": (0x0900, 0x097F),
    "Bengali": (0x0980, 0x09FF),
    "Gurmukhi": (0x0A00, 0x0A7F),
    "Gujarati": (0x0A80, 0x0AFF),
    "Oriya": (0x0B00, 0x0B7F),
    "Tamil": (0x0B80, 0x0BFF),
    "Telugu": (0x0C00, 0x0C7F),
    "Kannada": (0x0C80, 0x0CFF),
    "Malayalam": (0x0D00, 0x0D7F),
}
SCHOOL_LINES = (
    "Plan Beta - Online German Language School",
    "Thiruvananthapuram, Kerala, India",
    "office@planbeta.example",
)
REFUND_POLICY = (
    "Fees are not refundable once the first class of your batch has started. "
    "Before that, write to us for a refund of the amount paid."
)
PAGE_WIDTH = 190  # A4 less the 10 mm margins


def bank_details() -> list[tuple[str, str]]:
    """The bank transfer lines the school configured (each printed only when set)."""
    return [
        (label, value)
        for label, value in (
            ("Account name", settings.SCHOOL_BANK_ACCOUNT_NAME),
            ("Bank", settings.SCHOOL_BANK_NAME),
            ("Account number", settings.SCHOOL_BANK_ACCOUNT_NUMBER),
            ("IFSC", settings.SCHOOL_BANK_IFSC),
            ("SWIFT / BIC", settings.SCHOOL_BANK_SWIFT),
        )
        if value
    ]


def upi_uri(invoice: Invoice) -> str | None:
    """The UPI deep link for the amount due now (NPCI's upi://pay), or None when UPI cannot
    take this payment: no UPI id configured, not rupees, or nothing due."""
    due = invoice.amount_due_now
    if not settings.SCHOOL_UPI_ID or invoice.currency != "INR" or due <= 0:
        return None
    query = urlencode(
        {
            "pa": settings.SCHOOL_UPI_ID,
            "pn": settings.SCHOOL_UPI_NAME,
            "am": money_str(due),
            "cu": "INR",
            "tn": invoice.number,
        },
        quote_via=quote,
    )
    return f"upi://pay?{query}"


def scripts_in(*texts: str) -> list[str]:
    """The fallback scripts whose letters occur in the texts, in FALLBACK_SCRIPTS' order."""
    found = {
        script
        for text in texts
        for char in text
        if ord(char) >= 0x0900
        for script, (first, last) in FALLBACK_SCRIPTS.items()
        if first <= ord(char) <= last
    }
    return [script for script in FALLBACK_SCRIPTS if script in found]


class _InvoiceDocument(FPDF):
    def __init__(self, number: str, *, scripts: list[str]) -> None:
        super().__init__(format="A4")
        self.number = number
        self.add_font(FONT, "", FONT_DIR / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONT_DIR / "DejaVuSans-Bold.ttf")
        # Only the fonts of the scripts this invoice's text uses, and shaping only then: loading
        # the nine fonts and shaping every line more than doubles the time of a PDF
        # (bench/invoice_pdf.py), for letters a Latin-only invoice never draws.
        if scripts:
            for script in scripts:
                path = FONT_DIR / "noto" / f"NotoSans{script}-Regular.ttf"
                self.add_font(f"Noto{script}", "", path)
            self.set_fallback_fonts([f"Noto{script}" for script in scripts], exact_match=False)
            self.set_text_shaping(True)
        self.set_auto_page_break(auto=True, margin=18)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT, size=8)
        self.set_text_color(90, 90, 90)
        # {nb} is replaced by the page count when the document is closed.
        self.cell(0, 5, f"Invoice {self.number} · page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render_invoice_pdf(invoice: Invoice, *, status: str | None = None) -> bytes:
    """The PDF; `status` is the one to print when it is about to change (the e-mail that sends
    a draft carries the invoice as sent)."""
    lead = invoice.lead
    cur = invoice.currency
    shown_status = InvoiceStatus(status or invoice.status).label
    items = list(invoice.items.all())
    texts = [lead.name, lead.email, invoice.notes, settings.SCHOOL_UPI_NAME]
    texts += [f"{item.description} {item.month} {item.batch}" for item in items]
    texts += [value for _, value in bank_details()]
    doc = _InvoiceDocument(invoice.number, scripts=scripts_in(*texts))
    doc.set_title(f"Invoice {invoice.number}")
    doc.set_author("Plan Beta")
    doc.add_page()

    doc.set_font(FONT, "B", 15)
    doc.cell(120, 8, SCHOOL_LINES[0])
    doc.set_font(FONT, "B", 13)
    doc.cell(0, 8, "INVOICE", align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(FONT, size=9)
    for i, line in enumerate(SCHOOL_LINES[1:]):
        doc.cell(120, 5, line)
        right = (invoice.number, f"Status: {shown_status}")[i]
        doc.cell(0, 5, right, align="R", new_x="LMARGIN", new_y="NEXT")
    if settings.SCHOOL_GSTIN:
        doc.cell(0, 5, f"GSTIN {settings.SCHOOL_GSTIN}", new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)

    doc.set_font(FONT, size=10)
    for label, value in (
        ("Billed to", lead.name),
        ("WhatsApp", format_phone(lead.whatsapp)),
        ("E-mail", lead.email or "-"),
        ("Issue date", format_date(invoice.issue_date)),
        ("Due date", format_date(invoice.due_date)),
    ):
        doc.set_font(FONT, "B", 10)
        doc.cell(32, 6, label)
        doc.set_font(FONT, size=10)
        doc.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)

    _items_table(doc, invoice, items)
    _totals(doc, invoice, cur)
    _how_to_pay(doc, invoice)

    doc.ln(4)
    doc.set_font(FONT, "B", 10)
    doc.cell(0, 6, "Refund policy", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(FONT, size=9)
    doc.multi_cell(0, 5, REFUND_POLICY, new_x="LMARGIN", new_y="NEXT")
    if invoice.notes:
        doc.ln(2)
        doc.multi_cell(0, 5, f"Notes: {invoice.notes}", new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _items_table(doc: FPDF, invoice: Invoice, items: list[InvoiceItem]) -> None:
    doc.set_font(FONT, size=10)
    # A table, so that a long description wraps in its column instead of running into the next.
    with doc.table(
        col_widths=(72, 28, 26, 28, 36),
        borders_layout="HORIZONTAL_LINES",
        line_height=6,
        text_align=("LEFT", "LEFT", "LEFT", "LEFT", "RIGHT"),
        width=PAGE_WIDTH,
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 239, 245)),
    ) as table:
        table.row(["Description", "Level", "Month", "Batch", "Amount"])
        for item in items:
            values = (item.description, item.get_level_display(), item.month, item.batch)
            table.row([*(v or "-" for v in values), format_money(item.amount, invoice.currency)])
    doc.ln(2)


def _totals(doc: FPDF, invoice: Invoice, cur: str) -> None:
    rows: list[tuple[str, str, bool]] = [("Subtotal", format_money(invoice.subtotal, cur), False)]
    if invoice.discount:
        rows.append(("Discount", "\u2212" + format_money(invoice.discount, cur), False))
    rows.append(("Total", format_money(invoice.total_amount, cur), True))
    rows.append(("Paid so far", format_money(invoice.paid_amount, cur), False))
    if invoice.status == InvoiceStatus.CANCELLED:
        rows.append(("Amount due now", "nothing (cancelled)", True))
    else:
        rows.append(("Amount due now", format_money(invoice.amount_due_now, cur), True))
        if invoice.amount_due_later:
            rows.append(("Balance due later", format_money(invoice.amount_due_later, cur), False))
    for label, value, bold in rows:
        doc.set_font(FONT, "B" if bold else "", 10)
        doc.cell(150, 6, label, align="R")
        doc.cell(40, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")


def _how_to_pay(doc: FPDF, invoice: Invoice) -> None:
    if invoice.amount_due_now <= 0:
        return
    bank = bank_details()
    uri = upi_uri(invoice)
    if not bank and not uri:
        return
    doc.ln(5)
    doc.set_font(FONT, "B", 11)
    doc.cell(0, 7, "How to pay", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(FONT, size=9)
    doc.multi_cell(
        0,
        5,
        f"Please quote the invoice number {invoice.number} with your payment.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    top = doc.get_y()
    if bank:
        doc.set_font(FONT, "B", 10)
        doc.cell(0, 6, "Bank transfer", new_x="LMARGIN", new_y="NEXT")
        for label, value in bank:
            doc.set_font(FONT, size=9)
            doc.cell(32, 5, label)
            doc.cell(80, 5, value, new_x="LMARGIN", new_y="NEXT")
    if uri:
        doc.set_font(FONT, "B", 10)
        doc.cell(0, 6, "UPI", new_x="LMARGIN", new_y="NEXT")
        doc.set_font(FONT, size=9)
        doc.cell(32, 5, "UPI id")
        doc.cell(80, 5, settings.SCHOOL_UPI_ID, new_x="LMARGIN", new_y="NEXT")
        doc.multi_cell(
            110,
            5,
            "Or scan the code with any UPI app: it fills in the amount due now and the "
            "invoice number.",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        png = io.BytesIO()
        segno.make_qr(uri, error="m").save(png, kind="png", scale=6, border=2)
        png.seek(0)
        size = 38
        doc.image(png, x=10 + PAGE_WIDTH - size, y=top, w=size, h=size)
        doc.set_y(max(doc.get_y(), top + size + 2))
