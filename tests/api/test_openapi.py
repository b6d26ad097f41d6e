"""The OpenAPI schema at /api/schema says what the API does (planbeta/openapi.py); the
schemathesis run (test_schemathesis.py) holds the running API to it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from drf_spectacular.validation import validate_schema

from core.money import parse_money
from core.text import has_invisible_controls
from planbeta.openapi import NON_BLANK_TEXT, TEXT

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(founder_client):
    response = founder_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _component(schema, ref_holder):
    return schema["components"]["schemas"][ref_holder["$ref"].rsplit("/", 1)[1]]


def _body(schema, path, method, status):
    content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]
    return content["schema"]


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)


# --- money ------------------------------------------------------------------------------------


def test_money_comes_out_as_a_string_with_two_decimals(schema):
    invoice = schema["components"]["schemas"]["InvoiceOutput"]["properties"]
    for field in ("subtotal", "discount", "totalAmount", "payableNow", "paidAmount"):
        assert invoice[field]["type"] == "string"
        assert invoice[field]["pattern"] == r"^[0-9]+\.[0-9]{2}$"


def _accepts(text: str, allow_zero: bool) -> bool:
    try:
        parse_money(text, allow_zero=allow_zero)
    except ValueError:
        return False
    return True


SAMPLES = [
    "134.00", "134", "0.01", "0.5", "0.50", "00.50", "007", "1000000", "1000000.0",
    "1000000.00", "999999.99", " 134.00 ", "1000000.01", "1000001", "0", "0.0", "0.00", "00",
    "-1", "-0", "1.234", "1e3", "1,000", ".5", "5.", "134.00\u00a0", "+5", "\u0661", "NaN", "",
]  # fmt: skip


@pytest.mark.parametrize("allow_zero", [False, True])
def test_the_money_pattern_accepts_exactly_what_the_parser_accepts(schema, allow_zero):
    field = "discount" if allow_zero else "paidAmount"
    component = "InvoiceInput" if allow_zero else "PayAndConvertInput"
    as_text, as_number = schema["components"]["schemas"][component]["properties"][field]["oneOf"]
    pattern = re.compile(as_text["pattern"])

    disagreements = [
        text for text in SAMPLES if bool(pattern.search(text)) != _accepts(text, allow_zero)
    ]

    assert disagreements == []
    assert as_number == {
        "type": "number",
        "minimum": 0,
        "maximum": 1000000,
        "multipleOf": 0.01,
        **({} if allow_zero else {"exclusiveMinimum": True}),
    }
    assert Decimal("1000000") == Decimal(as_number["maximum"])


# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Asha", "അര്\u200dജുന്", "a\tb\nc", "Asha\u202eanoM", "x\x1b[31m", "\u2066", "\x00"]
)
def test_the_text_patterns_refuse_what_the_api_refuses(text):
    refused = has_invisible_controls(text) or "\x00" in text
    assert bool(re.search(TEXT, text)) is not refused
    assert bool(re.search(NON_BLANK_TEXT, text)) is not refused


def test_a_required_text_field_must_hold_more_than_white_space(schema):
    name = schema["components"]["schemas"]["LeadInput"]["properties"]["name"]
    assert name["maxLength"] == 150
    assert not re.search(name["pattern"], "   ")
    assert re.search(name["pattern"], " Asha ")


# --- lists, envelopes, nullable fields, enums, bounds -----------------------------------------


@pytest.mark.parametrize(
    ("path", "item"),
    [
        ("/api/leads", "LeadOutput"),
        ("/api/invoices", "InvoiceOutput"),
        ("/api/students", "StudentOutput"),
    ],
)
def test_lists_are_described_as_their_results_next_envelope(schema, path, item):
    page = _component(schema, _body(schema, path, "get", "200"))

    assert page["required"] == ["next", "results"]
    assert page["properties"]["results"]["items"] == {"$ref": f"#/components/schemas/{item}"}
    assert page["properties"]["next"]["nullable"] is True
    params = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert params["cursor"] == {"type": "string", "minLength": 1}


def test_the_audit_log_answer_is_logs_and_next_cursor_or_stats(schema):
    answer = _component(schema, _body(schema, "/api/system/audit-logs", "get", "200"))
    variants = [_component(schema, v) for v in answer["oneOf"]]

    assert [sorted(v["properties"]) for v in variants] == [["logs", "nextCursor"], ["stats"]]
    assert variants[0]["properties"]["nextCursor"]["nullable"] is True
    entry = _component(schema, variants[0]["properties"]["logs"]["items"])
    assert entry["properties"]["userId"]["nullable"] is True
    assert entry["properties"]["ipAddress"]["nullable"] is True


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("LeadOutput", "followUpDate"),
        ("LeadOutput", "convertedAt"),
        ("LeadOutput", "studentId"),
        ("InvoiceOutput", "sentAt"),
        ("InvoiceOutput", "studentId"),
        ("StudentOutput", "batch"),
    ],
)
def test_fields_that_can_be_null_say_so(schema, component, field):
    assert schema["components"]["schemas"][component]["properties"][field]["nullable"] is True


@pytest.mark.parametrize(
    ("component", "field", "enum"),
    [
        ("LeadOutput", "status", "LeadStatusEnum"),
        ("InvoiceOutput", "status", "InvoiceStatusEnum"),
        ("StudentOutput", "paymentStatus", "PaymentStatusEnum"),
        ("PaymentOutput", "method", "PaymentMethodEnum"),
    ],
)
def test_states_are_enums(schema, component, field, enum):
    assert schema["components"]["schemas"][component]["properties"][field] == {
        "$ref": f"#/components/schemas/{enum}"
    }


def test_bounds_are_stated(schema):
    components = schema["components"]["schemas"]
    items = components["InvoiceInput"]["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, 20)
    assert components["ItemInput"]["properties"]["description"]["maxLength"] == 200
    path_id = schema["paths"]["/api/leads/{lead_id}"]["get"]["parameters"][0]["schema"]
    assert path_id == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    audit = {
        p["name"]: p["schema"]
        for p in schema["paths"]["/api/system/audit-logs"]["get"]["parameters"]
    }
    assert audit["userId"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert audit["since"]["maxLength"] == 40


# --- errors and authentication -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/leads", "post", "400 401 403 413 415 429 500 503"),
        ("/api/leads", "get", "400 401 403 429 500 503"),
        ("/api/leads/{lead_id}", "patch", "400 401 403 404 409 413 415 429 500 503"),
        (
            "/api/invoices/{invoice_id}/pay-and-convert",
            "post",
            "400 401 403 404 409 413 415 422 429 500 503",
        ),
        ("/api/invoices/{invoice_id}/send", "post", "400 401 403 404 409 413 429 500 502 503"),
        ("/api/me", "get", "401 429 500 503"),
        ("/api/system/livez", "get", "500"),
        ("/api/system/health", "get", "429 500 503"),
        ("/api/system/health/money", "get", "429 500 503"),
    ],
)
def test_every_error_an_operation_can_answer_is_described(schema, path, method, statuses):
    statuses = set(statuses.split())
    responses = schema["paths"][path][method]["responses"]

    assert {s for s in responses if s[0] in "45"} == statuses
    # The probes' 503 is their own health body; every other error is the error contract.
    for status in statuses - {"503"} if path.startswith("/api/system/health") else statuses:
        body = _component(schema, _body(schema, path, method, status))
        assert set(body["required"]) in (
            {"error", "code", "details"},
            {"error", "code", "requestId"},
        )
    if "429" in statuses:
        assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_the_error_bodies_are_the_error_contract(schema):
    components = schema["components"]["schemas"]
    assert components["ServerError"]["properties"]["code"]["enum"] == [
        "internal_error",
        "service_unavailable",
    ]
    details = components["ValidationError"]["properties"]["details"]
    assert details["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert components["PayloadTooLargeError"]["properties"]["details"]["required"] == ["maxBytes"]
    assert components["RateLimitedError"]["properties"]["code"]["enum"] == ["rate_limited"]


def test_both_ways_of_signing_in_are_described(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["cookieAuth"]["type"], schemes["cookieAuth"]["in"]) == ("apiKey", "cookie")
    assert schema["paths"]["/api/leads"]["get"]["security"] == [
        {"bearerAuth": []},
        {"cookieAuth": []},
    ]
    assert "security" not in schema["paths"]["/api/system/livez"]["get"] or schema["paths"][
        "/api/system/livez"
    ]["get"]["security"] == [{}]
