"""The invoice e-mail to a lead, sent through the one mail adapter (core.mail)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from core.mail import Attachment, send_mail
from invoices.models import Invoice, InvoiceStatus
from invoices.pdf import bank_details


def send_invoice(invoice: Invoice, document: bytes, *, status: str | None = None) -> None:
    """E-mail the invoice PDF to its lead; raises core.mail.MailError if it was not accepted.

    `status` is the one the customer is told, as on the PDF (see invoices.services.invoice_send).
    """
    context = {
        "invoice": invoice,
        "lead": invoice.lead,
        "status": InvoiceStatus(status or invoice.status).label,
        "bank": bank_details(),
        "upi_id": settings.SCHOOL_UPI_ID if invoice.currency == "INR" else "",
    }
    send_mail(
        subject=f"Your Plan Beta invoice {invoice.number}",
        body=render_to_string("emails/invoice.txt", context),
        to=[invoice.lead.email],
        attachments=[Attachment(f"{invoice.number}.pdf", document, "application/pdf")],
    )
