"""Leniency that is refused now: numbers where text belongs, invisible control characters in
free text, amounts with odd spaces, an invoice above the amount cap. The API and the staff
pages share these rules (core.fields, core.forms, core.money)."""

from __future__ import annotations

import importlib
import json
import re
import uuid

import pytest
from django import forms
from django.test import Client
from rest_framework import serializers

from core.fields import StrictTextMixin
from core.forms import StaffForm
from core.text import INVISIBLE_CONTROLS_MESSAGE, refuse_invisible_controls
from invoices.models import Invoice
from leads.models import Lead
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db

LEAD = {"name": "Asha Menon", "whatsapp": "+919847012345", "source": "OTHER"}
NOT_TEXT = "Send text (a JSON string) here."


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def _invalid(response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["error"], body["code"]) == ("Some fields are not valid.", "validation_error")
    return body["details"]


def _invoice_body(**overrides):
    return {
        "currency": "EUR",
        "items": [{"description": "German A1", "amount": "134.00"}],
        **overrides,
    }


# --- numbers where text is expected -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 123),
        ("name", 1.5),
        ("notes", 7),
        ("email", 1),
    ],
)
def test_a_number_in_a_lead_text_field_is_refused(marketing_client, nothing_written, field, value):
    details = _invalid(post(marketing_client, "/api/leads", {**LEAD, field: value}))

    assert details == {field: [NOT_TEXT]}
    nothing_written()


@pytest.mark.parametrize("field", ["description", "month", "batch"])
def test_a_number_in_an_invoice_item_text_field_is_refused(
    marketing_client, nothing_written, field
):
    lead = make_lead()
    nothing_written.retake()
    item = {"description": "German A1", "amount": "134.00", field: 2026}

    details = _invalid(
        post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(items=[item]))
    )

    assert details == {f"items.0.{field}": [NOT_TEXT]}
    nothing_written()


def test_a_number_as_cancel_reason_is_refused(marketing_client, marketing, nothing_written):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()
    response = post(marketing_client, f"/api/invoices/{invoice.pk}/cancel", {"reason": 42})

    assert _invalid(response) == {"reason": [NOT_TEXT]}
    nothing_written()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"idempotencyKey": 12345678901}, "idempotencyKey"),
        ({"idempotencyKey": "key-12345678", "transactionId": 998877}, "transactionId"),
    ],
)
def test_a_number_as_idempotency_key_or_transaction_id_is_refused(
    marketing_client, marketing, nothing_written, body, field
):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "100.00", **body},
    )

    assert _invalid(response) == {field: [NOT_TEXT]}
    nothing_written()


@pytest.mark.parametrize("value", [True, "\uff11\uff12", "1.0", 1.0, 2**63])
def test_a_batch_id_must_be_a_plain_json_integer(
    marketing_client, marketing, nothing_written, value
):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "100.00", "idempotencyKey": f"k-{uuid.uuid4()}", "batchId": value},
    )

    assert list(_invalid(response)) == ["batchId"]
    nothing_written()


# --- invisible control characters ---------------------------------------------------------------

BIDI = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069"]
MARKS_AND_CONTROLS = ["\u200e", "\u200f", "\u061c", "\x1b", "\x07", "\x85"]


@pytest.mark.parametrize("char", BIDI + MARKS_AND_CONTROLS)
@pytest.mark.parametrize("field", ["name", "notes"])
def test_invisible_control_characters_in_a_lead_are_refused(
    marketing_client, nothing_written, char, field
):
    # "Asha\u202eanoM" shows as "AshaMona" in a right-to-left-aware viewer: another name.
    details = _invalid(post(marketing_client, "/api/leads", {**LEAD, field: f"Asha{char}anoM"}))

    assert details == {field: [INVISIBLE_CONTROLS_MESSAGE]}
    nothing_written()


@pytest.mark.parametrize(
    "text", ["അര്\u200dജുന്\u200c", "Zoë Müller", "line one\nline two\ttab", "😀"]
)
def test_ordinary_text_in_any_script_is_accepted(marketing_client, text):
    response = post(marketing_client, "/api/leads", {**LEAD, "name": text[:150], "notes": text})
    assert response.status_code == 201, response.content
    assert Lead.objects.get().notes == text


@pytest.mark.parametrize("field", ["description", "month", "batch"])
def test_invisible_control_characters_in_an_invoice_item_are_refused(
    marketing_client, nothing_written, field
):
    lead = make_lead()
    nothing_written.retake()
    item = {"description": "German A1", "amount": "134.00", field: "A1\u202eX"}

    details = _invalid(
        post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(items=[item]))
    )

    assert details == {f"items.0.{field}": [INVISIBLE_CONTROLS_MESSAGE]}
    nothing_written()


def test_invisible_control_characters_in_invoice_notes_are_refused(
    marketing_client, nothing_written
):
    lead = make_lead()
    nothing_written.retake()
    details = _invalid(
        post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(notes="Paid \u2067x"))
    )
    assert details == {"notes": [INVISIBLE_CONTROLS_MESSAGE]}
    nothing_written()


def test_invisible_control_characters_in_a_transaction_id_are_refused(
    marketing_client, marketing, nothing_written
):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()
    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "100.00", "idempotencyKey": "key-12345678", "transactionId": "UPI\u202e1"},
    )
    assert _invalid(response) == {"transactionId": [INVISIBLE_CONTROLS_MESSAGE]}
    nothing_written()


# --- amounts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "134.00\u00a0",  # no-break space
        "\u2009134.00",  # thin space
        "\u202f134",  # narrow no-break space
        "134\u3000",  # ideographic space
        "1\u00a0000.00",
        "\ufeff134.00",  # byte order mark
        "134.00\n",
        "134.00\u200b",  # zero-width space
    ],
)
def test_an_amount_with_an_odd_space_is_refused(marketing_client, nothing_written, amount):
    lead = make_lead()
    nothing_written.retake()
    body = _invoice_body(items=[{"description": "German A1", "amount": amount}])

    details = _invalid(post(marketing_client, f"/api/leads/{lead.pk}/invoice", body))

    assert details == {
        "items.0.amount": ["Enter a plain amount with up to 2 decimals, such as 134.00."]
    }
    nothing_written()


def test_an_amount_with_plain_spaces_around_it_is_still_read(marketing_client):
    lead = make_lead()
    body = _invoice_body(items=[{"description": "German A1", "amount": " 134.00 "}])

    response = post(marketing_client, f"/api/leads/{lead.pk}/invoice", body)

    assert response.status_code == 201
    assert response.json()["totalAmount"] == "134.00"


def test_a_paid_amount_with_a_no_break_space_is_refused(
    marketing_client, marketing, nothing_written
):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()
    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "100.00\u00a0", "idempotencyKey": "key-12345678"},
    )
    assert list(_invalid(response)) == ["paidAmount"]
    nothing_written()


def test_an_invoice_whose_items_add_up_past_the_cap_is_refused(marketing_client, nothing_written):
    lead = make_lead()
    nothing_written.retake()
    items = [{"description": "German A1", "amount": "999999.99"} for _ in range(2)]

    details = _invalid(
        post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(items=items))
    )

    assert details == {"items": ["The items add up to more than 1,000,000."]}
    nothing_written()


def test_an_invoice_of_exactly_the_cap_is_accepted(marketing_client):
    lead = make_lead()
    items = [{"description": "German A1", "amount": "500000.00"} for _ in range(2)]

    response = post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(items=items))

    assert response.status_code == 201
    assert response.json()["totalAmount"] == "1000000.00"


def test_patching_an_invoice_past_the_cap_is_refused_and_changes_nothing(
    marketing_client, marketing, nothing_written
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    nothing_written.retake()
    items = [{"description": "German A1", "amount": "600000.00"} for _ in range(2)]

    response = marketing_client.patch(
        f"/api/invoices/{invoice.pk}", json.dumps({"items": items}), content_type="application/json"
    )

    assert _invalid(response) == {"items": ["The items add up to more than 1,000,000."]}
    invoice.refresh_from_db()
    assert invoice.total_amount == 134
    nothing_written()


# --- the staff pages --------------------------------------------------------------------------


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


def _invoice_form(**items):
    form = {
        "currency": "EUR",
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "20",
    }
    form.update(items)
    return form


def test_the_lead_page_refuses_a_bidi_override_in_the_name(staff, nothing_written):
    response = staff.post(
        "/leads/new/",
        {"name": "Asha\u202eanoM", "whatsapp": "+919847012345", "source": "OTHER", "status": "NEW"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"name": [INVISIBLE_CONTROLS_MESSAGE]}
    nothing_written()


def test_the_invoice_page_refuses_an_amount_with_a_no_break_space(staff, nothing_written):
    lead = make_lead()
    nothing_written.retake()
    response = staff.post(
        f"/invoices/new/for-lead/{lead.pk}/",
        _invoice_form(**{"items-0-description": "German A1", "items-0-amount": "134.00\u00a0"}),
    )

    assert response.status_code == 400
    assert "Enter a plain amount with up to 2 decimals" in response.content.decode()
    nothing_written()


def test_the_invoice_page_refuses_items_past_the_cap(staff, nothing_written):
    lead = make_lead()
    nothing_written.retake()
    response = staff.post(
        f"/invoices/new/for-lead/{lead.pk}/",
        _invoice_form(
            **{
                "items-0-description": "German A1",
                "items-0-amount": "999999",
                "items-1-description": "German A2",
                "items-1-amount": "999999",
            }
        ),
    )

    assert response.status_code == 400
    assert "The items add up to more than 1,000,000." in response.content.decode()
    assert Invoice.objects.count() == 0
    nothing_written()


def test_the_invoice_page_refuses_a_bidi_character_in_an_item(staff, nothing_written):
    lead = make_lead()
    nothing_written.retake()
    response = staff.post(
        f"/invoices/new/for-lead/{lead.pk}/",
        _invoice_form(**{"items-0-description": "German\u2066 A1", "items-0-amount": "134"}),
    )

    assert response.status_code == 400
    assert response.context["items"].forms[0].errors == {
        "description": [INVISIBLE_CONTROLS_MESSAGE]
    }
    nothing_written()


def test_the_payment_page_refuses_a_paid_amount_with_a_thin_space(
    staff, marketing, nothing_written
):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()
    response = staff.post(
        f"/payments/invoice/{invoice.pk}/convert/",
        {"paid_amount": "\u2009100", "method": "UPI", "idempotency_key": "form-key-0001"},
    )
    assert response.status_code == 400
    assert "Enter a plain amount with up to 2 decimals" in response.content.decode()
    nothing_written()


def test_the_later_payment_page_refuses_a_bidi_transaction_id(staff, marketing, nothing_written):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    nothing_written.retake()
    response = staff.post(
        f"/payments/invoice/{invoice.pk}/record/",
        {
            "amount": "10",
            "method": "UPI",
            "transaction_id": "UPI\u202e9",
            "idempotency_key": "form-key-0002",
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {"transaction_id": [INVISIBLE_CONTROLS_MESSAGE]}
    nothing_written()


# --- one strict base everywhere ---------------------------------------------------------------

API_MODULES = ["accounts.apis", "leads.apis", "invoices.apis", "payments.apis", "monitoring.apis"]
FORM_MODULES = ["leads.forms", "invoices.forms", "payments.forms"]


def _serializers():
    seen = []
    for name in API_MODULES:
        module = importlib.import_module(name)
        stack = list(vars(module).values())
        while stack:
            obj = stack.pop()
            if isinstance(obj, type) and obj not in seen:
                if issubclass(obj, serializers.Serializer) and obj.__module__ == name:
                    seen.append(obj)
                if obj.__module__ == name:
                    stack.extend(vars(obj).values())
    return [s for s in seen if "Input" in s.__name__]


def _fields(serializer):
    for name, field in serializer().fields.items():
        child = getattr(field, "child", None)
        if isinstance(field, serializers.ListSerializer):
            child = field.child
        if isinstance(child, serializers.Serializer):
            yield from _fields(type(child))
        elif child is not None:
            yield f"{serializer.__name__}.{name}[]", child
        yield f"{serializer.__name__}.{name}", field


def test_every_api_input_text_field_is_strict():
    inputs = _serializers()
    assert len(inputs) >= 8, [s.__name__ for s in inputs]
    lenient = [
        name
        for serializer in inputs
        for name, field in _fields(serializer)
        if isinstance(field, serializers.CharField) and not isinstance(field, StrictTextMixin)
    ]
    assert lenient == []


def test_every_page_form_text_field_refuses_invisible_controls():
    forms_seen, lenient = [], []
    for name in FORM_MODULES:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, forms.BaseForm) and obj.__module__ == name:
                forms_seen.append(obj)
                if not issubclass(obj, StaffForm):
                    lenient.append(obj.__name__)
                for field_name, field in obj.base_fields.items():
                    if isinstance(field, forms.CharField) and (
                        refuse_invisible_controls not in field.validators
                    ):
                        lenient.append(f"{obj.__name__}.{field_name}")
    assert len(forms_seen) >= 6
    assert lenient == []


def test_the_strict_patterns_admit_no_control_character():
    from payments.idempotency import KEY_PATTERN

    assert not re.fullmatch(KEY_PATTERN, "key-1234\u202e5678")


# --- what the schema states, the API holds to ---------------------------------------------------


@pytest.mark.parametrize("value", ["20260131", "2026-W05-6", "2026-01-31T10:00:00", "31/01/2026"])
def test_a_date_is_yyyy_mm_dd_and_nothing_else(marketing_client, nothing_written, value):
    # DRF's DateField reads "20260131" and ISO week dates too (Python's fromisoformat).
    details = _invalid(post(marketing_client, "/api/leads", {**LEAD, "followUpDate": value}))

    assert details == {"followUpDate": ["Use a date such as 2026-01-31 (YYYY-MM-DD)."]}
    nothing_written()


def test_an_invoice_due_date_is_yyyy_mm_dd_too(marketing_client, nothing_written):
    lead = make_lead()
    nothing_written.retake()
    body = _invoice_body(dueDate="2030W016")

    details = _invalid(post(marketing_client, f"/api/leads/{lead.pk}/invoice", body))

    assert list(details) == ["dueDate"]
    nothing_written()


@pytest.mark.parametrize("count", [0, 21])
def test_an_invoice_needs_1_to_20_items(marketing_client, nothing_written, count):
    lead = make_lead()
    nothing_written.retake()
    items = [{"description": "German A1", "amount": "10.00"}] * count

    details = _invalid(
        post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(items=items))
    )

    assert details == {"items": ["Add between 1 and 20 items."]}
    nothing_written()


@pytest.mark.parametrize("key", [" key-12345678", "key-12345678 ", "key 12345678"])
def test_an_idempotency_key_is_taken_as_sent_not_trimmed(
    marketing_client, marketing, nothing_written, key
):
    invoice = make_invoice(actor=marketing)
    nothing_written.retake()

    response = post(
        marketing_client,
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        {"paidAmount": "100.00", "idempotencyKey": key},
    )

    assert _invalid(response) == {
        "idempotencyKey": ["Use 8 to 128 letters, digits, dots, colons, hyphens or underscores."]
    }
    nothing_written()


@pytest.mark.parametrize("discount", ["-0", "-0.00"])
def test_a_minus_sign_on_a_zero_discount_is_refused(marketing_client, nothing_written, discount):
    lead = make_lead()
    nothing_written.retake()

    details = _invalid(
        post(marketing_client, f"/api/leads/{lead.pk}/invoice", _invoice_body(discount=discount))
    )

    assert details == {"discount": ["The amount cannot be negative."]}
    nothing_written()


def test_a_json_negative_zero_discount_is_zero(marketing_client):
    lead = make_lead()
    body = json.dumps(_invoice_body()).replace('"currency"', '"discount": -0.0, "currency"')

    response = marketing_client.post(
        f"/api/leads/{lead.pk}/invoice", body, content_type="application/json"
    )

    assert response.status_code == 201
    assert response.json()["discount"] == "0.00"
