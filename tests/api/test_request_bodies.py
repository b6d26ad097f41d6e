"""Request bodies of any size, depth or encoding end in a 4xx that writes nothing (CONTRACT §2)."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LEAD = {"name": "Asha Menon", "whatsapp": "+919847012345", "source": "OTHER"}


def _error(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded"]
)
def test_a_body_over_the_upload_limit_is_a_413_whatever_its_type(
    marketing_client, settings, nothing_written, content_type
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({**LEAD, "notes": "x" * 1000})

    response = marketing_client.generic("POST", "/api/leads", body, content_type=content_type)

    assert _error(response) == (413, "payload_too_large")
    assert response.json()["details"] == {"maxBytes": 1000}
    nothing_written()


def test_a_body_over_the_limit_is_a_413_even_where_no_body_is_read(
    marketing_client, settings, nothing_written
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = marketing_client.generic(
        "POST", "/api/invoices/1/send", "x" * 1001, content_type="application/json"
    )

    assert _error(response) == (413, "payload_too_large")
    nothing_written()


def _post_chunked(client: Client, path: str, body: bytes):
    """POST as gunicorn hands Django a `Transfer-Encoding: chunked` request: the body already
    de-chunked in wsgi.input, no CONTENT_LENGTH, wsgi.input_terminated set."""
    return client.generic(
        "POST",
        path,
        CONTENT_TYPE="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_a_413(marketing_client, settings, nothing_written):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({**LEAD, "notes": "x" * 1000}).encode()

    response = _post_chunked(marketing_client, "/api/leads", body)

    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    nothing_written()


def test_a_chunked_body_within_the_limit_is_read_not_dropped(marketing_client):
    # Django reads a body without Content-Length as empty: this lead used to be refused as
    # "name: This field is required" (and a chunked PATCH changed nothing and said 200).
    response = _post_chunked(marketing_client, "/api/leads", json.dumps(LEAD).encode())

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "Asha Menon"


@pytest.mark.parametrize("depth", [33, 300, 900, 5000])
def test_json_nested_past_the_depth_limit_is_a_400(marketing_client, nothing_written, depth):
    # A few hundred levels pass json.loads but used to overflow the stack in the camelCase
    # conversion that runs after it: a 500 and an API_ERROR row.
    body = '{"name":' * depth + "1" + "}" * depth

    response = marketing_client.generic("POST", "/api/leads", body, content_type="application/json")

    assert _error(response) == (400, "malformed_json")
    assert response.json()["error"] == "The request body nests deeper than 32 levels."
    nothing_written()


def test_json_nested_within_the_limit_is_read(marketing_client):
    notes_holder = {"a": {"b": {"c": 1}}}
    response = marketing_client.post(
        "/api/leads", {**LEAD, "extra": notes_holder}, content_type="application/json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "charset",
    ["rot13", "rot_13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "utf-16", "latin-1"],
)
def test_a_charset_that_is_not_utf8_is_a_415(marketing_client, nothing_written, charset):
    # Python knows these names as codecs; decoding with the non-text ones raised LookupError,
    # a 500. The body is valid JSON in UTF-8: only the declared charset is refused.
    response = marketing_client.generic(
        "POST",
        "/api/leads",
        json.dumps(LEAD).encode(),
        content_type=f"application/json; charset={charset}",
    )

    assert _error(response) == (415, "unsupported_charset")
    nothing_written()


def test_an_unknown_charset_is_a_415(marketing_client, nothing_written):
    response = marketing_client.generic(
        "POST",
        "/api/leads",
        json.dumps(LEAD).encode(),
        content_type="application/json; charset=klingon-8",
    )

    assert _error(response) == (415, "unsupported_charset")
    nothing_written()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", '"utf-8"', "us-ascii"])
def test_utf8_in_any_spelling_is_accepted(marketing_client, charset):
    response = marketing_client.generic(
        "POST",
        "/api/leads",
        json.dumps(LEAD).encode(),
        content_type=f"application/json; charset={charset}",
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "raw", [b'{"name": "\xff\xfe"}', b"\xc3\x28", '{"name":"é"}'.encode("latin-1")]
)
def test_bytes_that_are_not_utf8_are_a_400(marketing_client, nothing_written, raw):
    response = marketing_client.generic("POST", "/api/leads", raw, content_type="application/json")

    assert _error(response) == (400, "malformed_json")
    assert response.json()["error"] == "The request body is not valid UTF-8."
    nothing_written()


@pytest.mark.parametrize("path", ["/api/me", "/api/system/audit-logs"])
def test_every_endpoint_parses_with_the_same_guarded_parser(founder_client, path, nothing_written):
    # Endpoints without a body of their own still parse one if a client sends it (DRF reads
    # request.data lazily); none of them may fall back to a parser without the guards.
    from django.urls import resolve

    view = resolve(path).func.cls
    assert [type(p).__name__ for p in view().get_parsers()] == ["ApiJSONParser"]
    nothing_written()


def test_an_anonymous_caller_gets_the_413_before_anything_else(settings, nothing_written):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = Client().generic("POST", "/api/leads", "x" * 11, content_type="application/json")
    assert _error(response) == (413, "payload_too_large")
    nothing_written()
