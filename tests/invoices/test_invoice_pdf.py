"""The customer's PDF and e-mail, read back as text (poppler's pdftotext): the real status, paid
so far and due now that agree after part payments, how to pay with the UPI QR code, the one
money format, page numbers."""

import email
import os
import shutil
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from invoices import pdf
from invoices.models import Invoice
from payments.services import payment_record
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db

PAYMENT_SETTINGS = {
    "SCHOOL_BANK_ACCOUNT_NAME": "Plan Beta Education",
    "SCHOOL_BANK_NAME": "Example Bank",
    "SCHOOL_BANK_ACCOUNT_NUMBER": "000012345678",
    "SCHOOL_BANK_IFSC": "EXMP0000001",
    "SCHOOL_UPI_ID": "planbeta@examplebank",
    "SCHOOL_UPI_NAME": "Plan Beta",
}


@pytest.fixture(autouse=True)
def payment_settings(settings):
    for name, value in PAYMENT_SETTINGS.items():
        setattr(settings, name, value)
    return settings


def _tool(tool):
    # poppler-utils (pdftotext, pdftoppm) and zbar-tools (zbarimg); .ci/run installs both.
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI reads the PDFs back: install {tool} (poppler-utils, zbar-tools).")
        pytest.skip(f"needs {tool} (poppler-utils, zbar-tools)")
    return tool


def text_of(document: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{uuid.uuid4()}.pdf"
    path.write_bytes(document)
    if folder := os.environ.get("BROWSER_SCREENSHOTS"):
        # Kept to look at, with pdftoppm, beside the pages' screenshots.
        shutil.copy(path, Path(folder) / path.name)
    out = subprocess.run(
        [_tool("pdftotext"), "-layout", str(path), "-"],
        capture_output=True,
        check=True,
        text=True,
    )
    return " ".join(out.stdout.split())


def _fresh(invoice):
    return Invoice.objects.prefetch_related("items").select_related("lead").get(pk=invoice.pk)


def test_a_draft_says_draft_with_the_amount_due_now_and_how_to_pay(marketing, tmp_path):
    invoice = make_invoice(
        actor=marketing, currency="INR", amounts=("100000.00", "20000"), payable_now="50000"
    )

    text = text_of(pdf.render_invoice_pdf(_fresh(invoice)), tmp_path)

    assert "Status: Draft" in text
    assert "Total ₹1,20,000.00" in text
    assert "Paid so far ₹0.00" in text
    assert "Amount due now ₹50,000.00" in text
    assert "Balance due later ₹70,000.00" in text
    assert "IFSC EXMP0000001" in text
    assert "UPI id planbeta@examplebank" in text
    assert f"Invoice {invoice.number} · page 1 of 1" in text


def test_after_part_payments_paid_so_far_and_due_now_add_up_to_the_total(marketing, tmp_path):
    invoice = make_converted_invoice(
        actor=marketing, currency="EUR", amounts=("1500.00",), payable_now="500", paid="200"
    )

    first = text_of(pdf.render_invoice_pdf(_fresh(invoice)), tmp_path)
    payment_record(
        invoice=invoice, amount=Decimal("400"), idempotency_key=f"t-{uuid.uuid4()}", actor=marketing
    )
    second = text_of(pdf.render_invoice_pdf(_fresh(invoice)), tmp_path)

    assert "Status: Partially paid" in first
    # 500 were asked first; 200 came, so 300 of it is due now and 1,000 later.
    assert "Paid so far €200.00" in first
    assert "Amount due now €300.00" in first
    assert "Balance due later €1,000.00" in first
    # Once the first part is paid, the rest of the balance is what is due.
    assert "Paid so far €600.00" in second
    assert "Amount due now €900.00" in second
    assert "Balance due later" not in second
    assert "UPI id" not in second  # UPI takes rupees only


def test_a_paid_invoice_asks_for_nothing(marketing, tmp_path):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="134.00")

    text = text_of(pdf.render_invoice_pdf(_fresh(invoice)), tmp_path)

    assert "Status: Paid" in text
    assert "Amount due now €0.00" in text
    assert "How to pay" not in text


def test_the_upi_link_carries_the_amount_due_now_and_the_invoice_number(marketing):
    invoice = make_invoice(actor=marketing, currency="INR", amounts=("2500",), payable_now="1000")

    assert pdf.upi_uri(_fresh(invoice)) == (
        f"upi://pay?pa=planbeta%40examplebank&pn=Plan%20Beta&am=1000.00&cu=INR&tn={invoice.number}"
    )


def test_no_upi_id_means_no_upi_link(marketing, payment_settings):
    payment_settings.SCHOOL_UPI_ID = ""
    invoice = make_invoice(actor=marketing, currency="INR")

    assert pdf.upi_uri(_fresh(invoice)) is None


def test_the_qr_code_on_the_page_is_the_upi_link(marketing, tmp_path):
    zbar = _tool("zbarimg")
    invoice = make_invoice(actor=marketing, currency="INR", amounts=("2500",))
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf.render_invoice_pdf(_fresh(invoice)))
    subprocess.run(
        [_tool("pdftoppm"), "-r", "150", "-png", str(path), str(tmp_path / "page")], check=True
    )
    [page] = tmp_path.glob("page*.png")
    out = subprocess.run([zbar, "--raw", "-q", str(page)], capture_output=True, text=True)
    assert out.stdout.strip() == pdf.upi_uri(_fresh(invoice))


def test_a_long_invoice_numbers_every_page(marketing, tmp_path):
    invoice = make_invoice(actor=marketing, amounts=("10",) * 20)
    Invoice.objects.filter(pk=invoice.pk).update(notes="A note. " * 400)

    text = text_of(pdf.render_invoice_pdf(_fresh(invoice)), tmp_path)

    assert f"Invoice {invoice.number} · page 1 of 2" in text
    assert f"Invoice {invoice.number} · page 2 of 2" in text


def test_the_e_mailed_pdf_and_message_say_sent_not_draft(
    marketing_client, marketing, smtp_server, tmp_path
):
    lead = make_lead(email="arjun@example.com")
    invoice = make_invoice(
        actor=marketing, lead=lead, currency="INR", amounts=("100000",), payable_now="25000"
    )

    response = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert response.status_code == 200
    message = email.message_from_bytes(smtp_server.messages[0].content)
    [attachment] = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    [body] = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    text = " ".join(body.get_payload(decode=True).decode().split())
    assert "Status: Sent" in text_of(attachment.get_payload(decode=True), tmp_path)
    assert "Status: Sent" in text
    assert "Total: ₹1,00,000.00" in text
    assert "Paid so far: ₹0.00" in text
    assert "Amount due now: ₹25,000.00" in text
    assert "UPI id: planbeta@examplebank" in text
    assert "IFSC: EXMP0000001" in text


# "Priya" in the scripts of India's main languages, each with the Noto font that draws it.
INDIC_NAMES = [
    ("प्रिया शर्मा", "NotoSansDevanagari"),  # Hindi, Marathi
    ("பிரியா", "NotoSansTamil"),
    ("প্রিয়া", "NotoSansBengali"),  # Bengali, Assamese
    ("ప్రియ", "NotoSansTelugu"),
    ("ಪ್ರಿಯಾ", "NotoSansKannada"),
    ("പ്രിയ", "NotoSansMalayalam"),
    ("પ્રિયા", "NotoSansGujarati"),
    ("ਪ੍ਰਿਆ", "NotoSansGurmukhi"),  # Punjabi
    ("ପ୍ରିୟା", "NotoSansOriya"),  # Odia
]


def _fonts_of(document: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"{uuid.uuid4()}.pdf"
    path.write_bytes(document)
    return subprocess.run(
        [_tool("pdffonts"), str(path)], capture_output=True, check=True, text=True
    ).stdout


@pytest.mark.parametrize(("name", "font"), INDIC_NAMES)
def test_a_name_in_an_indian_script_is_drawn_with_its_own_font(marketing, tmp_path, name, font):
    invoice = make_invoice(actor=marketing, lead=make_lead(name=name))
    document = pdf.render_invoice_pdf(_fresh(invoice))

    text = text_of(document, tmp_path)
    embedded = {
        line.split()[0].split("+")[-1]
        for line in _fonts_of(document, tmp_path).splitlines()[2:]
        if " yes " in line
    }

    # pdftotext may put a space inside a syllable whose vowel sign is drawn before its consonant
    # (प्रि या): the letters are all there, in their order.
    assert "".join(name.split()) in "".join(text.split())
    assert font in embedded  # the letters come from the Noto font, not DejaVu's empty boxes
    assert "DejaVuSansBook" in embedded  # and the rest of the page from DejaVu as before


def test_a_latin_name_needs_no_indian_font(marketing, tmp_path):
    invoice = make_invoice(actor=marketing, lead=make_lead(name="Asha Menon"))
    document = pdf.render_invoice_pdf(_fresh(invoice))

    fonts = _fonts_of(document, tmp_path)

    assert "Asha Menon" in text_of(document, tmp_path)
    assert "Noto" not in fonts  # fpdf2 embeds only the fonts a document uses


def test_only_the_scripts_an_invoice_uses_are_loaded():
    assert pdf.scripts_in("Asha Menon", "asha@example.com", "€ ₹ and quotes") == []
    assert pdf.scripts_in("प्रिया", "A1 for பிரியா", "प्रिया again") == ["Devanagari", "Tamil"]
