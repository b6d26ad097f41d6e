"""One error contract for the whole API (CONTRACT §2): the DRF exception handler.

`{"error": "<sentence>", "code": "<snake_case>", "details": {...}}`; the error types it maps live in
`core.errors`. An unexpected failure becomes a 500 with the request id, an API_ERROR audit row and a
Sentry event, never a stack trace.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from audit.context import current_context
from audit.models import Action, Severity
from audit.services import audit_record_independent, is_audited
from core.errors import ApplicationError

INTERNAL_ERROR_MESSAGE = (
    "Something went wrong on our side. It has been recorded; quote the request id."
)


def error_body(message: str, code: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": message, "code": code, "details": details or {}}


_DRF_MESSAGES = {
    exceptions.NotAuthenticated: (
        "Authentication credentials were not provided.",
        "not_authenticated",
    ),
    exceptions.PermissionDenied: ("You do not have permission to do this.", "permission_denied"),
    exceptions.NotFound: ("Not found.", "not_found"),
    exceptions.MethodNotAllowed: (None, "method_not_allowed"),
    exceptions.NotAcceptable: (None, "not_acceptable"),
    exceptions.UnsupportedMediaType: (None, "unsupported_media_type"),
    exceptions.Throttled: (None, "rate_limited"),
    exceptions.AuthenticationFailed: (None, "authentication_failed"),
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(error_body(exc.message, exc.code, exc.details), status=exc.status_code)

    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        details = _validation_details(exc.detail)
        return Response(
            error_body("Some fields are not valid.", "validation_error", details),
            status=status.HTTP_400_BAD_REQUEST,
        )

    if isinstance(exc, exceptions.ParseError):
        return Response(
            error_body("The request body is not valid JSON.", "malformed_json"),
            status=status.HTTP_400_BAD_REQUEST,
        )

    if isinstance(exc, exceptions.APIException):
        set_rollback()
        message, code = _DRF_MESSAGES.get(type(exc), (None, exc.default_code))
        if str(exc.detail) != str(exc.default_detail):
            message = str(exc.detail)  # a specific reason, e.g. "CSRF Failed: …"
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(
            error_body(message or str(exc.detail), code),
            status=exc.status_code,
            headers=headers,
        )

    set_rollback()
    request = context.get("request")
    if not is_audited(exc):
        view = context.get("view")
        audit_record_independent(
            Action.API_ERROR,
            severity=Severity.ERROR,
            description=(
                f"Unhandled error in {type(view).__name__ if view else 'API'} on "
                f"{getattr(request, 'method', '')} {getattr(request, 'path', '')}"
            ),
            error=exc,
        )
    request_id = getattr(request, "request_id", "") or current_context().request_id
    return Response(
        {
            "error": INTERNAL_ERROR_MESSAGE,
            "code": "internal_error",
            "requestId": request_id,
        },
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _validation_details(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested errors into {"field": [...], "items.0.amount": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" else _camel(str(key))
            path = f"{prefix}.{name}" if prefix else name
            out.update(_validation_details(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for i, item in enumerate(detail):
                if item:
                    out.update(_validation_details(item, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
