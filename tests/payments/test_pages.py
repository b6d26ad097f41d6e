"""The staff pages: reachable by founders and marketing only, forms that explain their errors,
and payment forms that cannot pay twice."""

import re

import pytest
from django.test import Client

from audit.models import AuditLog
from invoices.models import Invoice
from leads.models import Lead
from payments.models import Payment, Student
from tests.factories import make_lead
from tests.html_forms import read_post_form
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


def hidden_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


PAGES = [
    "/leads/",
    "/leads/new/",
    "/leads/{lead}/",
    "/leads/{lead}/edit/",
    "/leads/{converted_lead}/",
    "/invoices/",
    "/invoices/new/for-lead/{lead}/",
    "/invoices/{invoice}/",
    "/invoices/{invoice}/edit/",
    "/invoices/{invoice}/pdf/",
    "/payments/invoice/{invoice}/convert/",
    "/payments/invoice/{converted}/record/",
    "/payments/students/",
]
POST_ONLY = [
    "/leads/{lead}/delete/",
    "/invoices/{invoice}/send/",
    "/invoices/{invoice}/cancel/",
]


@pytest.mark.parametrize("who", ["anonymous", "teacher", "marketing", "founder"])
def test_page_role_matrix(who, request, marketing):
    lead = make_lead()
    invoice = make_invoice(actor=marketing)
    converted = make_converted_invoice(actor=marketing)
    client = Client()
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    ids = {
        "lead": lead.pk,
        "invoice": invoice.pk,
        "converted": converted.pk,
        "converted_lead": converted.lead_id,
    }

    for path in PAGES:
        response = client.get(path.format(**ids))
        if who == "anonymous":
            assert response.status_code == 302, path
            assert response["Location"].startswith("/accounts/login/?next="), path
        elif who == "teacher":
            assert response.status_code == 403, path
        else:
            assert response.status_code == 200, path
    if who in ("anonymous", "teacher"):
        for path in POST_ONLY:
            response = client.post(path.format(**ids))
            assert response.status_code == (302 if who == "anonymous" else 403), path
        assert Lead.objects.filter(pk=lead.pk).exists()
        assert Invoice.objects.get(pk=invoice.pk).status == "DRAFT"


def test_nav_shows_money_links_to_marketing_but_not_to_teachers(staff, teacher):
    teacher_client = Client()
    teacher_client.force_login(teacher)

    assert 'href="/leads/"' in staff.get("/").content.decode()
    assert 'href="/leads/"' not in teacher_client.get("/").content.decode()


def test_creating_a_lead_with_a_bad_number_explains_it_beside_the_field(staff):
    response = staff.post(
        "/leads/new/", {"name": "Arjun", "whatsapp": "123", "source": "META_ADS", "status": "NEW"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_whatsapp_error">Enter a valid phone number' in html
    assert Lead.objects.count() == 0


def test_creating_and_editing_a_lead_through_the_pages(staff):
    created = staff.post(
        "/leads/new/",
        {"name": "Arjun", "whatsapp": "+91 98470 12345", "source": "META_ADS", "status": "NEW"},
    )
    lead = Lead.objects.get()
    edited = staff.post(
        f"/leads/{lead.pk}/edit/",
        {
            "name": "Arjun Nair",
            "whatsapp": "+919847012345",
            "source": "META_ADS",
            "status": "CONTACTED",
        },
    )

    assert (created.status_code, created["Location"]) == (302, f"/leads/{lead.pk}/")
    assert edited.status_code == 302
    lead.refresh_from_db()
    assert (lead.name, lead.status) == ("Arjun Nair", "CONTACTED")
    assert AuditLog.objects.get(action="LEAD_UPDATED").metadata["changes"]["name"] == {
        "before": "Arjun",
        "after": "Arjun Nair",
    }


def test_lead_list_searches_and_filters(staff):
    make_lead(name="Sneha Pillai", status="CONTACTED")
    make_lead(name="Joel Thomas", status="NEW")

    html = staff.get("/leads/?q=sneha").content.decode()
    by_status = staff.get("/leads/?status=NEW").content.decode()

    assert "Sneha Pillai" in html and "Joel Thomas" not in html
    assert "Joel Thomas" in by_status and "Sneha Pillai" not in by_status


def test_generating_an_invoice_through_the_form(staff):
    lead = make_lead()
    form = {
        "currency": "INR",
        "discount": "1000",
        "payable_now": "",
        "due_date": "",
        "notes": "",
        "items-TOTAL_FORMS": "3",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "20",
        "items-0-description": "German Language Course",
        "items-0-amount": "14000",
        "items-0-level": "A1",
        "items-1-description": "German Language Course",
        "items-1-amount": "",
        "items-2-description": "German Language Course",
        "items-2-amount": "",
    }

    response = staff.post(f"/invoices/new/for-lead/{lead.pk}/", form)

    invoice = Invoice.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/invoices/{invoice.pk}/")
    assert (invoice.total_amount, invoice.payable_now, invoice.currency) == (13000, 13000, "INR")


def test_invoice_form_explains_a_bad_amount_and_a_too_large_discount(staff):
    lead = make_lead()
    base = {
        "currency": "EUR",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "20",
        "items-0-description": "German Language Course",
    }

    bad_amount = staff.post(f"/invoices/new/for-lead/{lead.pk}/", {**base, "items-0-amount": "1e3"})
    big_discount = staff.post(
        f"/invoices/new/for-lead/{lead.pk}/", {**base, "items-0-amount": "100", "discount": "100"}
    )

    assert "Enter a plain amount with up to 2 decimals" in bad_amount.content.decode()
    assert 'id="id_discount_error">The discount must be smaller' in big_discount.content.decode()
    assert Invoice.objects.count() == 0


def test_a_double_submitted_pay_and_convert_form_pays_once(staff, marketing):
    invoice = make_invoice(actor=marketing)
    page = staff.get(f"/payments/invoice/{invoice.pk}/convert/").content.decode()
    form = {
        "paid_amount": "100.00",
        "method": "UPI",
        "transaction_id": "UPI-1",
        "idempotency_key": hidden_key(page),
    }

    first = staff.post(f"/payments/invoice/{invoice.pk}/convert/", form, follow=True)
    second = staff.post(f"/payments/invoice/{invoice.pk}/convert/", form, follow=True)

    assert "is now student STU-" in first.content.decode()
    assert "This payment was already recorded; nothing was added." in second.content.decode()
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)


def test_each_rendering_of_the_payment_form_has_a_new_key(staff, marketing):
    invoice = make_invoice(actor=marketing)

    one = hidden_key(staff.get(f"/payments/invoice/{invoice.pk}/convert/").content.decode())
    two = hidden_key(staff.get(f"/payments/invoice/{invoice.pk}/convert/").content.decode())

    assert one != two


def test_pay_form_explains_an_amount_above_what_remains(staff, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))

    response = staff.post(
        f"/payments/invoice/{invoice.pk}/convert/",
        {"paid_amount": "200", "method": "UPI", "idempotency_key": "form-key-0001"},
    )

    assert response.status_code == 400
    assert (
        'id="id_paid_amount_error">Only 134.00 remains to be paid on this invoice.'
        in response.content.decode()
    )
    assert Student.objects.count() == 0


def test_recording_a_later_payment_through_the_form(staff, marketing):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    key = hidden_key(staff.get(f"/payments/invoice/{invoice.pk}/record/").content.decode())

    response = staff.post(
        f"/payments/invoice/{invoice.pk}/record/",
        {"amount": "100", "method": "CASH", "idempotency_key": key},
    )

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "PAID"


def test_cancel_and_send_buttons(staff, marketing, mailoutbox):
    invoice = make_invoice(actor=marketing, lead=make_lead(email="arjun@example.com"))
    other = make_invoice(actor=marketing)

    staff.post(f"/invoices/{invoice.pk}/send/")
    staff.post(f"/invoices/{other.pk}/cancel/", {"reason": "wrong course"})

    assert [m.to for m in mailoutbox] == [["arjun@example.com"]]
    assert Invoice.objects.get(pk=invoice.pk).status == "SENT"
    assert Invoice.objects.get(pk=other.pk).cancel_reason == "wrong course"


def test_a_converted_lead_cannot_be_edited_through_the_page(staff, marketing):
    lead = make_converted_invoice(actor=marketing).lead

    shown = staff.get(f"/leads/{lead.pk}/edit/", follow=True)
    posted = staff.post(
        f"/leads/{lead.pk}/edit/",
        {"name": "Other", "whatsapp": lead.whatsapp, "source": "OTHER", "status": "NEW"},
    )

    assert "it can no longer be changed" in shown.content.decode()
    assert posted.status_code == 400
    assert "it can no longer be changed or deleted" in posted.content.decode()
    lead.refresh_from_db()
    assert lead.name != "Other"


def test_staff_pages_carry_no_inline_script_the_content_security_policy_would_block(
    staff, marketing
):
    lead = make_lead()
    invoice = make_invoice(actor=marketing, lead=lead)

    for path in (
        f"/leads/{lead.pk}/",
        f"/invoices/{invoice.pk}/",
        f"/payments/invoice/{invoice.pk}/convert/",
    ):
        response = staff.get(path)
        html = response.content.decode()
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert "<script>" not in html and "onsubmit=" not in html and "onclick=" not in html
        assert '<script src="/static/js/staff_forms.js" defer></script>' in html


def test_editing_an_invoice_through_the_form_records_before_and_after(staff, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00", "156.00"))
    form = {
        "currency": "EUR",
        "discount": "20.00",
        "payable_now": "",
        "due_date": invoice.due_date.isoformat(),
        "notes": "",
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "2",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "20",
        "items-0-description": "German Language Course",
        "items-0-amount": "134.00",
        "items-0-level": "A1",
        "items-1-description": "German Language Course",
        "items-1-amount": "156.00",
        "items-1-level": "A1",
    }

    # The row's Remove button (the page's script does the same without a round trip).
    shown = staff.post(f"/invoices/{invoice.pk}/edit/", {**form, "remove_row": "1"})
    assert shown.status_code == 200
    assert 'name="items-TOTAL_FORMS" value="1"' in shown.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).subtotal == 290  # nothing saved yet
    data, _ = read_post_form(shown.content.decode(), having="due_date")
    response = staff.post(f"/invoices/{invoice.pk}/edit/", data)

    assert (response.status_code, response["Location"]) == (302, f"/invoices/{invoice.pk}/")
    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.total_amount, invoice.payable_now) == (134, 114, 114)
    assert invoice.items.count() == 1
    changes = AuditLog.objects.get(action="INVOICE_UPDATED").metadata["changes"]
    assert changes["totalAmount"] == {"before": "290.00", "after": "114.00"}
    assert len(changes["items"]["before"]) == 2 and len(changes["items"]["after"]) == 1


def test_a_paid_invoice_cannot_be_edited_through_the_page(staff, marketing):
    invoice = make_converted_invoice(actor=marketing, paid="134.00")

    response = staff.get(f"/invoices/{invoice.pk}/edit/", follow=True)

    assert "A paid invoice cannot be edited." in response.content.decode()


def test_pay_form_with_a_malformed_idempotency_key_pays_nothing(staff, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))

    response = staff.post(
        f"/payments/invoice/{invoice.pk}/convert/",
        {"paid_amount": "100", "method": "UPI", "idempotency_key": "x"},
    )

    assert response.status_code == 400
    assert (Student.objects.count(), Payment.objects.count()) == (0, 0)
    invoice.refresh_from_db()
    assert invoice.status == "DRAFT"


def _convert_form(client, invoice):
    page = client.get(f"/payments/invoice/{invoice.pk}/convert/").content.decode()
    return {"paid_amount": "50", "method": "UPI", "idempotency_key": hidden_key(page)}


def test_the_second_of_two_conversions_sees_one_message_and_no_form(staff, marketing, founder):
    invoice = make_invoice(actor=marketing)
    other = Client()
    other.force_login(founder)
    url = f"/payments/invoice/{invoice.pk}/convert/"
    mine, theirs = _convert_form(staff, invoice), _convert_form(other, invoice)

    first = other.post(url, theirs)
    second = staff.post(url, mine)

    assert first.status_code == 302
    page = second.content.decode()
    assert second.status_code == 409
    assert re.findall(r'<li class="(\w+)"><span role="alert">([^<]*)</span></li>', page) == [
        (
            "error",
            "Your payment of €50.00 was not recorded: someone else converted "
            f"{invoice.lead.name} a moment ago. Check the payments below before recording "
            "anything more.",
        )
    ]
    assert 'name="paid_amount"' not in page
    assert "Record payment &amp; convert" not in page
    assert Payment.objects.count() == 1


def test_in_two_tabs_of_one_session_the_winner_s_success_stays_with_the_winner(staff, marketing):
    invoice = make_invoice(actor=marketing)
    url = f"/payments/invoice/{invoice.pk}/convert/"
    tab_a, tab_b = _convert_form(staff, invoice), _convert_form(staff, invoice)

    staff.post(url, tab_a)  # its redirect not yet followed when tab B's answer comes
    loser = staff.post(url, tab_b).content.decode()
    winner = staff.get(f"/invoices/{invoice.pk}/").content.decode()

    assert "is now student" not in loser
    assert loser.count('role="alert"') == 1
    assert "is now student" in winner
    assert "was not recorded" not in winner
