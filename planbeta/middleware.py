"""What every request under /api/ passes before a view sees it."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from planbeta.errors import payload_too_large_body

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


class ApiBodyLimitMiddleware:
    """413 for an API body over DATA_UPLOAD_MAX_MEMORY_SIZE, whatever its content type.

    Django checks the limit only where it reads a body (request.body, request.POST), so an
    endpoint that never reads one, or a content type nobody parses, would otherwise take any
    size. A body sent with `Transfer-Encoding: chunked` has no Content-Length: Django would read
    it as empty (a PATCH would silently change nothing), so it is read here, up to the limit,
    and handed on with its length.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and is_api_request(request):
            if _declared_length(request) > limit:
                return _too_large()
            if _is_chunked(request) and not request.META.get("CONTENT_LENGTH"):
                body = request.META["wsgi.input"].read(limit + 1)
                if len(body) > limit:
                    return _too_large()
                # Django's request reads its body from `_stream`, bounded by CONTENT_LENGTH.
                request._stream = io.BytesIO(body)
                request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_chunked(request: HttpRequest) -> bool:
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "")
    return "chunked" in encoding.lower() and "wsgi.input" in request.META


def _too_large() -> JsonResponse:
    return JsonResponse(payload_too_large_body(), status=413)
