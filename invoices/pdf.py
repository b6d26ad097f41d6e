"""The invoice as a PDF (fpdf2, pure Python; nothing to install beyond the package)."""

from __future__ import annotations

from django.conf import settings
from fpdf import FPDF

from core.money import money_str
from invoices.models import Invoice
from leads.validators import format_phone

SCHOOL_LINES = (
    "Plan Beta - Online German Language School",
    "Thiruvananthapuram, Kerala, India",
    "office@planbeta.example",
)
REFUND_POLICY = (
    "Fees are not refundable once the first class of your batch has started. "
    "Before that, write to us for a refund of the amount paid."
)


def _latin1(text: str) -> str:
    # The built-in PDF fonts cover Latin-1 only; anything else is shown as "?" rather than failing.
    return str(text).encode("latin-1", "replace").decode("latin-1")


def render_invoice_pdf(invoice: Invoice) -> bytes:
    lead = invoice.lead
    cur = invoice.currency
    doc = FPDF(format="A4")
    doc.set_title(f"Invoice {invoice.number}")
    doc.set_author("Plan Beta")
    doc.add_page()
    doc.set_font("Helvetica", "B", 16)
    doc.cell(0, 9, _latin1(SCHOOL_LINES[0]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=10)
    for line in SCHOOL_LINES[1:]:
        doc.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    gstin = settings.SCHOOL_GSTIN
    if gstin:
        doc.cell(0, 5, _latin1(f"GSTIN {gstin}"), new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)
    doc.set_font("Helvetica", "B", 13)
    doc.cell(0, 8, f"Invoice {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=10)
    for label, value in (
        ("Billed to", lead.name),
        ("WhatsApp", format_phone(lead.whatsapp)),
        ("E-mail", lead.email or "-"),
        ("Issue date", invoice.issue_date.isoformat()),
        ("Due date", invoice.due_date.isoformat()),
        ("Status", invoice.get_status_display()),
    ):
        doc.cell(35, 6, label)
        doc.cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)

    doc.set_font("Helvetica", "B", 10)
    widths = (70, 30, 25, 30, 35)
    for width, head in zip(
        widths, ("Description", "Level", "Month", "Batch", "Amount"), strict=True
    ):
        doc.cell(width, 7, head, border="B")
    doc.ln()
    doc.set_font("Helvetica", size=10)
    for item in invoice.items.all():
        values = (
            item.description,
            item.level,
            item.month,
            item.batch,
            f"{cur} {money_str(item.amount)}",
        )
        for width, value in zip(widths, values, strict=True):
            doc.cell(width, 7, _latin1(value)[:40])
        doc.ln()
    doc.ln(3)
    for label, amount, bold in (
        ("Subtotal", invoice.subtotal, False),
        ("Discount", invoice.discount, False),
        ("Total", invoice.total_amount, True),
        ("Paid so far", invoice.paid_amount, False),
        ("Payable now", invoice.payable_now, True),
        ("Remaining", invoice.remaining_amount, False),
    ):
        doc.set_font("Helvetica", "B" if bold else "", 10)
        doc.cell(155, 6, label, align="R")
        doc.cell(35, 6, f"{cur} {money_str(amount)}", align="R", new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)
    doc.set_font("Helvetica", "B", 10)
    doc.cell(0, 6, "Refund policy", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    doc.multi_cell(0, 5, REFUND_POLICY)
    if invoice.notes:
        doc.ln(2)
        doc.multi_cell(0, 5, _latin1(f"Notes: {invoice.notes}"))
    return bytes(doc.output())
