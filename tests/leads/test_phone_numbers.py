"""One number, one stored spelling (E.164): what makes "one student per WhatsApp number" hold."""

import json
import uuid

import pytest
from django.test import Client

from audit.models import AuditLog
from invoices.models import Invoice
from leads.models import Lead
from payments.models import Payment, Student
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db

LEAD = {"name": "Lena Vogel", "source": "REFERRAL"}


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, json.dumps(body), content_type="application/json")


def convert(client, invoice):
    return post(
        client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "50.00", "idempotencyKey": f"k-{uuid.uuid4()}"},
    )


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+4915166419430", "+4915166419430"),
        ("4915166419430", "+4915166419430"),  # as wa.me links write it
        ("+49 1516 6419430", "+4915166419430"),
        ("0049 1516 6419430", "+4915166419430"),
        ("9847012345", "+919847012345"),  # a 10-digit Indian mobile
        ("98470 12345", "+919847012345"),
        ("098470-12345", "+919847012345"),
        ("919847012345", "+919847012345"),
        ("+91 (98470) 12345", "+919847012345"),
        ("0091 98470 12345", "+919847012345"),
        ("0471 234 5678", "+914712345678"),  # a Thiruvananthapuram landline
        ("+1 202 555 0123", "+12025550123"),
    ],
)
def test_a_number_is_stored_in_one_spelling_however_it_is_typed(marketing_client, typed, stored):
    response = post(marketing_client, "/api/leads", {**LEAD, "whatsapp": typed, "phone": typed})

    assert response.status_code == 201, response.json()
    assert (response.json()["whatsapp"], response.json()["phone"]) == (stored, stored)
    assert Lead.objects.values_list("whatsapp", "phone").get() == (stored, stored)


@pytest.mark.parametrize(
    "typed",
    [
        "12345",
        "+91 50123 45678",  # no Indian number starts with 5
        "98470 1234",  # one digit short
        "+49 1516",
        "call me",
        "1-800-FLOWERS",
        "+91 98470 12345 ext. 12",
        "+91 98470 12345;ext=12",
        "\u202e+919847012345",  # a right-to-left override in front
        "+91\u200b9847012345",  # a zero-width space inside
        "+91" + "".join(chr(0x0966 + int(d)) for d in "9847012345"),  # Devanagari digits
        "+" + "9" * 40,
    ],
)
@pytest.mark.parametrize("field", ["whatsapp", "phone"])
def test_a_number_that_is_not_valid_is_a_400_naming_the_field(marketing_client, field, typed):
    body = {**LEAD, "whatsapp": "+919847012345", field: typed}

    response = post(marketing_client, "/api/leads", body)

    assert response.status_code == 400
    assert (response.json()["code"], list(response.json()["details"])) == (
        "validation_error",
        [field],
    )
    assert Lead.objects.count() == 0
    assert AuditLog.objects.count() == 0


@pytest.mark.parametrize("field", ["whatsapp", "phone"])
@pytest.mark.parametrize("value", [4915166419430, 9847012345, 9.847012345e9, True, ["+91"]])
def test_a_number_sent_as_a_json_number_is_refused_not_coerced(marketing_client, field, value):
    lead = make_lead(whatsapp="+919847012345", phone="")

    created = post(
        marketing_client, "/api/leads", {**LEAD, "whatsapp": "+919847000111", field: value}
    )
    changed = patch(marketing_client, f"/api/leads/{lead.pk}", {field: value})

    for response in (created, changed):
        assert response.status_code == 400
        assert list(response.json()["details"]) == [field]
        assert "JSON string" in response.json()["details"][field][0]
    assert list(Lead.objects.values_list("whatsapp", "phone")) == [("+919847012345", "")]
    assert AuditLog.objects.count() == 0


def test_a_second_lead_with_the_number_in_another_spelling_cannot_become_a_second_student(
    marketing_client, marketing
):
    first = post(marketing_client, "/api/leads", {**LEAD, "whatsapp": "+4915166419430"})
    second = post(marketing_client, "/api/leads", {**LEAD, "whatsapp": "4915166419430"})
    make_converted_invoice(actor=marketing, lead=Lead.objects.get(pk=first.json()["id"]))
    invoice = make_invoice(actor=marketing, lead=Lead.objects.get(pk=second.json()["id"]))

    response = convert(marketing_client, invoice)

    assert (response.status_code, response.json()["code"]) == (409, "whatsapp_in_use")
    assert list(Student.objects.values_list("whatsapp", flat=True)) == ["+4915166419430"]
    assert Payment.objects.count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "DRAFT"
    assert not Lead.objects.get(pk=second.json()["id"]).converted


def test_conversion_compares_numbers_in_e164_even_for_a_lead_stored_in_an_old_spelling(
    marketing_client, marketing
):
    holder = make_converted_invoice(actor=marketing, lead=make_lead(whatsapp="+4915166419430"))
    # Written as the old validator allowed, before numbers were stored in one spelling.
    invoice = make_invoice(actor=marketing, lead=make_lead(whatsapp="4915166419430"))

    response = convert(marketing_client, invoice)

    assert (response.status_code, response.json()["code"]) == (409, "whatsapp_in_use")
    assert holder.lead.student.student_code in response.json()["error"]
    assert Student.objects.count() == 1
    assert Payment.objects.count() == 1


def test_a_student_gets_the_lead_number_in_e164(marketing_client, marketing):
    invoice = make_invoice(actor=marketing, lead=make_lead(whatsapp="4915166419430"))

    response = convert(marketing_client, invoice)

    assert response.status_code == 201
    assert response.json()["student"]["whatsapp"] == "+4915166419430"


def test_the_lead_form_stores_the_number_in_e164_and_names_a_bad_one(staff):
    base = {"name": "Arjun", "source": "META_ADS", "status": "NEW"}

    good = staff.post("/leads/new/", {**base, "whatsapp": "98470 12345", "phone": "0471 2345678"})
    bad = staff.post("/leads/new/", {**base, "whatsapp": "98470 12345", "phone": "call me"})

    assert good.status_code == 302
    assert Lead.objects.values_list("whatsapp", "phone").get() == ("+919847012345", "+914712345678")
    assert bad.status_code == 400
    assert 'id="id_phone_error">Enter a valid phone number' in bad.content.decode()
    assert Lead.objects.count() == 1


def test_pages_show_numbers_in_the_readable_international_form(staff, marketing):
    lead = make_lead(whatsapp="+4915166419430", phone="+914712345678")
    converted = make_converted_invoice(actor=marketing, lead=make_lead(whatsapp="+919847012345"))
    invoice = make_invoice(actor=marketing, lead=lead)

    listing = staff.get("/leads/").content.decode()
    detail = staff.get(f"/leads/{lead.pk}/").content.decode()
    edit = staff.get(f"/leads/{lead.pk}/edit/").content.decode()
    students = staff.get("/payments/students/").content.decode()
    convert_page = staff.get(f"/payments/invoice/{invoice.pk}/convert/").content.decode()

    assert "+49 1516 6419430" in listing and "+91 98470 12345" in listing
    assert "+49 1516 6419430" in detail and "+91 471 234 5678" in detail
    assert 'value="+49 1516 6419430"' in edit and 'value="+91 471 234 5678"' in edit
    assert "+91 98470 12345" in students
    assert "+4915166419430" not in listing + detail + students + convert_page
    assert converted.lead.student.whatsapp == "+919847012345"


@pytest.mark.parametrize("q", ["+91 98470 12345", "098470 12345", "98470-12345", "9847012345"])
def test_a_number_searched_as_staff_read_it_finds_the_lead_and_the_student(
    staff, marketing_client, marketing, q
):
    make_converted_invoice(actor=marketing, lead=make_lead(name="Arjun", whatsapp="+919847012345"))
    make_lead(name="Other", whatsapp="+919847099999")

    leads = marketing_client.get("/api/leads", {"q": q}).json()["results"]
    students = marketing_client.get("/api/students", {"q": q}).json()["results"]
    page = staff.get("/payments/students/", {"q": q}).content.decode()

    assert [lead["name"] for lead in leads] == ["Arjun"]
    assert [s["name"] for s in students] == ["Arjun"]
    assert "Arjun" in page


def test_the_readable_form_and_e164_read_back_as_the_same_number():
    from leads.validators import format_phone, normalize_phone

    for stored in ("+919847012345", "+4915166419430", "+914712345678", "+12025550123"):
        assert normalize_phone(format_phone(stored)) == stored


def test_creating_a_lead_with_a_students_number_says_so_in_the_api_answer(
    marketing_client, marketing
):
    student = make_converted_invoice(
        actor=marketing, lead=make_lead(name="Asha Nair", whatsapp="+4915166419430")
    ).lead.student

    response = post(marketing_client, "/api/leads", {**LEAD, "whatsapp": "4915166419430"})

    assert response.status_code == 201
    assert response.json()["whatsappBelongsTo"] == {
        "id": student.pk,
        "studentId": student.student_code,
        "name": "Asha Nair",
    }
    assert Lead.objects.filter(whatsapp="+4915166419430").count() == 2  # leads may share it


def test_changing_a_leads_number_to_a_students_says_so_in_the_api_answer(
    marketing_client, marketing
):
    student = make_converted_invoice(
        actor=marketing, lead=make_lead(name="Asha Nair", whatsapp="+919847012345")
    ).lead.student
    lead = make_lead(whatsapp="+919847099999")

    unchanged = patch(marketing_client, f"/api/leads/{lead.pk}", {"notes": "called"})
    changed = patch(marketing_client, f"/api/leads/{lead.pk}", {"whatsapp": "98470 12345"})
    read = marketing_client.get(f"/api/leads/{lead.pk}")

    assert unchanged.json()["whatsappBelongsTo"] is None
    assert changed.status_code == 200
    holder = {"id": student.pk, "studentId": student.student_code, "name": "Asha Nair"}
    assert changed.json()["whatsappBelongsTo"] == holder
    assert read.json()["whatsappBelongsTo"] == holder


def test_a_converted_lead_is_not_warned_about_its_own_student(marketing_client, marketing):
    lead = make_converted_invoice(actor=marketing, lead=make_lead(whatsapp="+919847012345")).lead
    sibling = make_lead(whatsapp="+919847012345")

    listing = marketing_client.get("/api/leads").json()["results"]

    assert {row["id"]: row["whatsappBelongsTo"] is None for row in listing} == {
        lead.pk: True,
        sibling.pk: False,
    }


def _warnings(response):
    return [str(m) for m in response.context["messages"] if m.level_tag == "warning"]


def test_the_new_lead_page_warns_with_a_link_when_a_student_has_the_number(staff, marketing):
    student = make_converted_invoice(
        actor=marketing, lead=make_lead(name="Asha Nair", whatsapp="+919847012345")
    ).lead.student
    form = {"name": "Ravi Nair", "source": "REFERRAL", "status": "NEW"}

    warned = staff.post("/leads/new/", {**form, "whatsapp": "98470 12345"}, follow=True)
    quiet = staff.post("/leads/new/", {**form, "whatsapp": "98470 99999"}, follow=True)

    code = student.student_code
    link = f'<a href="/payments/students/?q={code}">{code} Asha Nair</a>'
    assert _warnings(warned) == [
        f"WhatsApp +91 98470 12345 already belongs to student {link}. Leads may share a number, "
        "but this lead cannot become a student until its number is changed."
    ]
    assert link in warned.content.decode()  # the link is a link, not escaped text
    assert _warnings(quiet) == []
    assert Lead.objects.filter(name="Ravi Nair").count() == 2


def test_the_lead_edit_page_warns_when_the_number_changes_to_a_students(staff, marketing):
    student = make_converted_invoice(
        actor=marketing, lead=make_lead(name="Asha Nair", whatsapp="+919847012345")
    ).lead.student
    lead = make_lead(whatsapp="+919847099999")
    form = {"name": lead.name, "source": lead.source, "status": "NEW"}

    response = staff.post(
        f"/leads/{lead.pk}/edit/", {**form, "whatsapp": "+919847012345"}, follow=True
    )

    assert [student.student_code in w and "+91 98470 12345" in w for w in _warnings(response)] == [
        True
    ]
    detail = response.content.decode()
    assert (
        f'Also the number of student <a href="/payments/students/?q={student.student_code}">'
        in detail
    )
    assert Lead.objects.get(pk=lead.pk).whatsapp == "+919847012345"


def test_the_pay_and_convert_page_warns_before_the_money_is_recorded(staff, marketing):
    student = make_converted_invoice(
        actor=marketing, lead=make_lead(name="Asha Nair", whatsapp="+919847012345")
    ).lead.student
    shared = make_invoice(actor=marketing, lead=make_lead(whatsapp="+919847012345"))
    own = make_invoice(actor=marketing, lead=make_lead(whatsapp="+919847099999"))

    warned = staff.get(f"/payments/invoice/{shared.pk}/convert/").content.decode()
    quiet = staff.get(f"/payments/invoice/{own.pk}/convert/").content.decode()

    assert (
        f'already belongs to student <a href="/payments/students/?q={student.student_code}">'
        in warned
    )
    assert "the conversion will be refused" in warned
    assert "already belongs to student" not in quiet
