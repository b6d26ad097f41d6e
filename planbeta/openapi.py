"""What the OpenAPI schema (/api/schema) says beyond what each view declares (drf-spectacular).

- The authentication schemes: a bearer token or the browser session.
- Money: a string with two decimals out; in, a string or a JSON number within the limits
  `core.money.parse_money` enforces.
- Every error an operation can answer, in the error contract's shape (CONTRACT §2), added by
  `add_error_responses` from what the view is: authenticated or not, role-checked, with a body,
  query parameters or an id in the path. Statuses that only some operations have (409, 422, 502)
  are declared on those views, with a description; this fills in their body.

Imported from PlanbetaConfig.ready(): extensions register themselves on import.
`tests/api/test_schemathesis.py` checks the schema against the running API.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from accounts.permissions import IsFounder, IsMoneyStaff

# --- authentication -------------------------------------------------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from `python manage.py issue_token EMAIL`.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "rest_framework.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The session of a staff member logged in at /accounts/login/; "
            "unsafe methods also need the X-CSRFToken header.",
        }


class HealthSessionScheme(SessionScheme):
    # The same session, read by the health endpoint in a way that survives a database outage.
    target_class = "monitoring.apis._SessionIfAvailable"
    name = "healthCookieAuth"


# --- money ----------------------------------------------------------------------------------

# What parse_money accepts as text, as a regular expression: ASCII spaces around, leading zeros,
# up to two decimals, more than 0 (or 0 itself where allowed) and at most 1,000,000.
_UP_TO_A_MILLION = r"0*(1000000(\.00?)?|[1-9][0-9]{0,5}(\.[0-9]{1,2})?)|0+\.(0[1-9]|[1-9][0-9]?)"
_ZERO = r"0+(\.0{1,2})?"
MONEY_OUT = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "example": "134.00"}


def money_in(*, allow_zero: bool) -> dict[str, Any]:
    text = f"{_UP_TO_A_MILLION}|{_ZERO}" if allow_zero else _UP_TO_A_MILLION
    number: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1000000}
    if not allow_zero:
        number["exclusiveMinimum"] = True
    number["multipleOf"] = 0.01
    return {
        "oneOf": [
            {"type": "string", "pattern": f"^ *({text}) *$", "example": "134.00"},
            number,
        ],
        "description": 'An amount as a string ("134.00") or a JSON number with at most two '
        "decimals; no exponent, NaN or infinity.",
    }


class MoneyFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "core.money.MoneyField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        if direction == "response":
            return dict(MONEY_OUT)
        return money_in(allow_zero=self.target.allow_zero)


# --- text -----------------------------------------------------------------------------------

# What core.text.refuse_invisible_controls and DRF's NUL validator refuse. (DRF also refuses
# lone surrogates; UTF-8 cannot carry them, and a pattern with them is not portable.)
_CONTROLS = (
    r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
)
# Blank allowed: any text without them (drf-spectacular adds the empty string as an alternative).
TEXT = rf"^[^{_CONTROLS}]+$"
# Not blank: DRF trims the value, so it needs one character that is not white space.
NON_BLANK_TEXT = rf"^[^{_CONTROLS}]*[^\s{_CONTROLS}][^{_CONTROLS}]*$"


class StrictTextExtension(OpenApiSerializerFieldExtension):
    """The characters core.fields' text fields refuse, as a pattern (requests only)."""

    target_class = "core.fields.StrictTextMixin"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # A regular expression of its own (an idempotency key, an action name) or an e-mail
        # address already admits no control character.
        if direction == "request" and not isinstance(
            self.target, (serializers.RegexField, serializers.EmailField)
        ):
            schema["pattern"] = TEXT if self.target.allow_blank else NON_BLANK_TEXT
        return schema


class BoundedListExtension(OpenApiSerializerFieldExtension):
    """A nested list's min_length / max_length (an invoice's 1-20 items) as minItems / maxItems;
    drf-spectacular leaves them out."""

    target_class = "rest_framework.serializers.ListSerializer"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        low = self.target.min_length or (0 if self.target.allow_empty else 1)
        if low:
            schema["minItems"] = low
        if self.target.max_length is not None:
            schema["maxItems"] = self.target.max_length
        return schema


# --- errors ---------------------------------------------------------------------------------


def _error_schema(codes: list[str] | None, details: dict[str, Any]) -> dict[str, Any]:
    code: dict[str, Any] = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
    if codes:
        code = {"type": "string", "enum": codes}
    return {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "A sentence for a person."},
            "code": code,
            "details": details,
        },
        "required": ["error", "code", "details"],
    }


NO_DETAILS = {"type": "object", "maxProperties": 0}
ERROR_COMPONENTS: dict[str, dict[str, Any]] = {
    # validation_error, malformed_json, or a rule's own code (amount_exceeds_remaining...).
    "ValidationError": _error_schema(
        None,
        {
            "type": "object",
            "description": "field (camelCase, items.0.amount for a nested one) → messages",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    ),
    "AuthenticationError": _error_schema(
        ["not_authenticated", "authentication_failed"], NO_DETAILS
    ),
    "PermissionError": _error_schema(["permission_denied"], NO_DETAILS),
    "NotFoundError": _error_schema(["not_found"], NO_DETAILS),
    "Error": _error_schema(None, {"type": "object"}),
    "PayloadTooLargeError": _error_schema(
        ["payload_too_large"],
        {
            "type": "object",
            "properties": {"maxBytes": {"type": "integer"}},
            "required": ["maxBytes"],
        },
    ),
    "UnsupportedMediaTypeError": _error_schema(
        ["unsupported_media_type", "unsupported_charset"], NO_DETAILS
    ),
    "RateLimitedError": _error_schema(["rate_limited"], NO_DETAILS),
    "ServerError": {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "string", "enum": ["internal_error", "service_unavailable"]},
            "requestId": {"type": "string", "description": "Quote it; the audit row has it."},
        },
        "required": ["error", "code", "requestId"],
    },
}

_STANDARD: dict[str, tuple[str, str]] = {
    "400": ("ValidationError", "The input is not valid; nothing was changed."),
    "401": ("AuthenticationError", "No credentials, or a token that is unknown or revoked."),
    "403": ("PermissionError", "The caller's role may not do this (or the CSRF check failed)."),
    "404": ("NotFoundError", "No such id."),
    "409": ("Error", "The current state forbids it; nothing was changed."),
    "413": ("PayloadTooLargeError", "The body is larger than the server takes."),
    "415": ("UnsupportedMediaTypeError", "Send application/json in UTF-8."),
    "422": ("Error", "The idempotency key was used with another payload or invoice."),
    "429": ("RateLimitedError", "Too many requests from this token or address."),
    "500": ("ServerError", "An unexpected failure; it was recorded with the request id."),
    "502": ("Error", "A server we depend on (the mail server) refused or did not answer."),
    "503": ("ServerError", "The database is down or too slow; try again shortly."),
}
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait before trying again.",
        "required": True,
    }
}
_UNSAFE = {"post", "put", "patch", "delete"}
_UNTHROTTLED = {"/api/system/livez"}
# The probes answer 503 with their own body (the health format), declared on the views.
_OWN_503 = {"/api/system/readyz", "/api/system/health", "/api/system/health/money"}


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _statuses(path: str, method: str, operation: dict[str, Any], view: Any) -> set[str]:
    permissions = getattr(view, "permission_classes", [])
    authenticated = not any(issubclass(p, AllowAny) for p in permissions)
    role_checked = any(issubclass(p, (IsFounder, IsMoneyStaff)) for p in permissions)
    has_body = "requestBody" in operation
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    statuses = {"500"}
    if has_body or has_query:
        statuses.add("400")
    if authenticated:
        statuses.add("401")
    if role_checked or (authenticated and method in _UNSAFE):
        statuses.add("403")
    if "{" in path:
        statuses.add("404")
    if has_body or method in _UNSAFE:
        statuses.update({"413", "415"} if has_body else {"413"})
    if path not in _UNTHROTTLED:
        statuses.add("429")
    if path not in _UNTHROTTLED | _OWN_503:
        statuses.add("503")
    return statuses


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every error an operation can answer, with a body."""
    views = {
        (path, method.lower()): callback.cls for path, _, method, callback in generator.endpoints
    }
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(ERROR_COMPONENTS)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            view = views.get((path, method))
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, method, operation, view) | set(responses)):
                if not (status.startswith("4") or status.startswith("5")):
                    continue
                component, description = _STANDARD.get(status, ("Error", "An error."))
                response = responses.setdefault(status, {})
                response.setdefault("description", description)
                if not response["description"]:
                    response["description"] = description
                response.setdefault("content", _ref(component))
                if status == "429":
                    response.setdefault("headers", {}).update(_RETRY_AFTER)
    return result
