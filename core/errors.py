"""The error types of the API's one error contract (CONTRACT §2).

A service raises these; `planbeta.errors.api_exception_handler` turns them into
`{"error": "<sentence>", "code": "<snake_case>", "details": {...}}` with the status they carry.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status


class ApplicationError(Exception):
    """A broken business rule: the request was understood but cannot be done as asked."""

    status_code = status.HTTP_400_BAD_REQUEST

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
