"""The error types of the API's one error contract (CONTRACT §2).

A service raises these; `planbeta.errors.api_exception_handler` turns them into
`{"error": "<sentence>", "code": "<snake_case>", "details": {...}}` with the status they carry.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status

from core.text import camel


class ApplicationError(Exception):
    """A broken business rule: the request was understood but cannot be done as asked."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


class ServiceUnavailableError(ApplicationError):
    """A dependency (the database) cannot answer now; trying again later may work (503)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, message: str, *, code: str = "service_unavailable") -> None:
        super().__init__(message, code=code)


# One shape for every "this input is not valid", wherever it was found (the body, the query
# string, a business rule on a field): code `validation_error`, details by camelCase field name.
VALIDATION_MESSAGE = "Some fields are not valid."
QUERY_VALIDATION_MESSAGE = "Some query parameters are not valid."


def validation_error(
    details: dict[str, list[str]], *, message: str = VALIDATION_MESSAGE
) -> ApplicationError:
    return ApplicationError(message, code="validation_error", details=details)


def invalid_field(field: str, message: str) -> ApplicationError:
    """One field (camelCase, as the client spelled it) refused with one sentence."""
    return validation_error({field: [message]})


def invalid_parameter(name: str, message: str) -> ApplicationError:
    """One query parameter refused with one sentence."""
    return validation_error({name: [message]}, message=QUERY_VALIDATION_MESSAGE)


def validation_details(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested errors into {"field": [...], "items.0.amount": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                # A nested serializer's own errors (a list of too many items) are its field's.
                path = prefix or "non_field_errors"
            else:
                path = f"{prefix}.{camel(str(key))}" if prefix else camel(str(key))
            out.update(validation_details(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for i, item in enumerate(detail):
                if item:
                    out.update(validation_details(item, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out
