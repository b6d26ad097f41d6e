from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from audit.context import bind_request, unbind
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent, is_audited
from core.database import database_unavailable, unavailable_reason

_CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)


class RequestContextMiddleware:
    """Open the audit context for the request and echo its request id on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = bind_request(request)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
            return response
        finally:
            unbind(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # Page views only: API views turn their exceptions into responses in planbeta.errors.
        # Exceptions Django answers with a 4xx are the client's doing, not a system error.
        # The response itself is Django's handler500 (planbeta.errors.server_error).
        if isinstance(exception, _CLIENT_ERRORS) or is_audited(exception):
            return None
        if database_unavailable(exception):
            action = Action.DATABASE_ERROR
            what = f"Database unavailable ({unavailable_reason(exception)})"
        else:
            action, what = Action.SYSTEM_ERROR, "Unhandled error"
        audit_record_independent(
            AuditEntry(
                action,
                severity=Severity.ERROR,
                description=f"{what} on {request.method} {request.path}",
                error=exception,
            ),
        )
        return None
