"""One error contract for the whole API (CONTRACT §2): the DRF exception handler.

`{"error": "<sentence>", "code": "<snake_case>", "details": {...}}`; the error types it maps live in
`core.errors`. An unexpected failure becomes a 500 with the request id, an API_ERROR audit row and a
Sentry event, never a stack trace. When the database is the cause (down, stalled, a statement or
lock timeout: core.database), the answer is a 503 `service_unavailable` with `Retry-After` and a
DATABASE_ERROR row instead; pages get the same as an HTML page (`server_error`, Django's
handler500).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from audit.context import current_context
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent, is_audited
from core.database import database_unavailable, unavailable_reason
from core.errors import ApplicationError, validation_details, validation_error

RATE_LIMITED_MESSAGE = "Too many requests; try again in a moment."
INTERNAL_ERROR_MESSAGE = (
    "Something went wrong on our side. It has been recorded; quote the request id."
)
UNAVAILABLE_MESSAGE = (
    "The service is briefly unavailable: the database is not answering. "
    "Try again in a moment; if it persists, quote the request id."
)
# Long enough for a restarted or failed-over database to come back, short enough that a person
# retrying by hand is not kept waiting.
RETRY_AFTER_SECONDS = 5


def error_body(message: str, code: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": message, "code": code, "details": details or {}}


def payload_too_large_body() -> dict[str, Any]:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body(
        f"The request body is larger than {limit} bytes.",
        "payload_too_large",
        {"maxBytes": limit},
    )


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

    if isinstance(exc, exceptions.ValidationError):
        exc = validation_error(validation_details(exc.detail))

    if isinstance(exc, ApplicationError):
        set_rollback()
        body = error_body(exc.message, exc.code, exc.details)
        headers: dict[str, str] = {}
        if exc.status_code >= 500:
            # Our side failed (the mail server, the database): the person quotes the request id.
            request = context.get("request")
            body["requestId"] = getattr(request, "request_id", "") or current_context().request_id
        if exc.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return Response(body, status=exc.status_code, headers=headers)

    if isinstance(exc, exceptions.ParseError):
        # The parser's own sentence where it has one ("nested too deeply"), else the general one.
        specific = str(exc.detail) != str(exc.default_detail)
        return Response(
            error_body(
                str(exc.detail) if specific else "The request body is not valid JSON.",
                "malformed_json",
            ),
            status=status.HTTP_400_BAD_REQUEST,
        )

    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE; the API middleware
        # answers most of these before the view, this is for a body that grew past its length.
        return Response(payload_too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)

    if isinstance(exc, exceptions.APIException):
        set_rollback()
        message, code = _DRF_MESSAGES.get(type(exc), (None, exc.default_code))
        if str(exc.detail) != str(exc.default_detail):
            message = str(exc.detail)  # a specific reason, e.g. "CSRF Failed: …"
        headers = {}
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        if isinstance(exc, exceptions.Throttled):
            # Whole seconds, rounded up: "0" would invite the client straight back.
            # getattr: djangorestframework-stubs does not declare the `wait` that DRF sets.
            headers["Retry-After"] = str(max(1, math.ceil(getattr(exc, "wait", None) or 1)))
            message = RATE_LIMITED_MESSAGE
        return Response(
            error_body(message or str(exc.detail), code),
            status=exc.status_code,
            headers=headers,
        )

    set_rollback()
    request = context.get("request")
    view = context.get("view")
    where = (
        f"{type(view).__name__ if view else 'API'} on "
        f"{getattr(request, 'method', '')} {getattr(request, 'path', '')}"
    )
    request_id = getattr(request, "request_id", "") or current_context().request_id
    if database_unavailable(exc):
        record_database_unavailable(exc, where=f"in {where}")
        return Response(
            unavailable_body(request_id),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if not is_audited(exc):
        audit_record_independent(
            AuditEntry(
                Action.API_ERROR,
                severity=Severity.ERROR,
                description=f"Unhandled error in {where}",
                error=exc,
            ),
        )
    return Response(
        {
            "error": INTERNAL_ERROR_MESSAGE,
            "code": "internal_error",
            "requestId": request_id,
        },
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def unavailable_body(request_id: str) -> dict[str, str]:
    return {"error": UNAVAILABLE_MESSAGE, "code": "service_unavailable", "requestId": request_id}


def record_database_unavailable(exc: BaseException, *, where: str) -> None:
    """One DATABASE_ERROR row (spooled while the database is away) unless one was written."""
    if not is_audited(exc):
        audit_record_independent(
            AuditEntry(
                Action.DATABASE_ERROR,
                severity=Severity.ERROR,
                description=f"Database unavailable ({unavailable_reason(exc)}) {where}",
                error=exc,
            ),
        )


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: a 503 page (JSON under /api/) when the database is the cause.

    Reached for exceptions of page views and of any middleware (a session saved when the
    response goes out); API views answer through `api_exception_handler` before this.
    """
    exc = sys.exc_info()[1]
    if exc is None or not database_unavailable(exc):
        if request.path.startswith("/api/"):
            return JsonResponse(
                {
                    "error": INTERNAL_ERROR_MESSAGE,
                    "code": "internal_error",
                    "requestId": getattr(request, "request_id", ""),
                },
                status=500,
            )
        return defaults.server_error(request)
    record_database_unavailable(exc, where=f"on {request.method} {request.path}")
    request_id = getattr(request, "request_id", "")
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(unavailable_body(request_id), status=503)
    else:
        # Rendered without the request: the context processors would ask the database for the
        # user and the messages.
        page = loader.get_template("503.html").render({"request_id": request_id})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
