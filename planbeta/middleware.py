"""What every request under /api/ passes before a view sees it."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.throttling import AddressRateThrottle, ProbeRateThrottle
from planbeta.errors import RATE_LIMITED_MESSAGE, error_body, payload_too_large_body

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def json_response(body: dict, status: int) -> JsonResponse:
    """An error body spelled like the API's own answers (compact JSON)."""
    return JsonResponse(body, status=status, json_dumps_params={"separators": (",", ":")})


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
    return json_response(payload_too_large_body(), 413)


_UNLIMITED = re.compile(r"^/api/system/livez$")
_PROBES = re.compile(r"^/api/system/(readyz|health|health/money)$")


class ApiRateLimitMiddleware:
    """429 for an address that sends more than its share to /api/, before authentication or
    routing (see accounts.throttling). Writes nothing: a flood must not flood the trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request) and not _UNLIMITED.match(request.path):
            throttle_class = (
                ProbeRateThrottle if _PROBES.match(request.path) else AddressRateThrottle
            )
            throttle = throttle_class()
            if not throttle.allow_request(request, None):
                return rate_limited(throttle.wait())
        return self.get_response(request)


def rate_limited(wait: float | None) -> JsonResponse:
    response = json_response(error_body(RATE_LIMITED_MESSAGE, "rate_limited"), 429)
    # Whole seconds, rounded up: "0" would invite the client straight back.
    response["Retry-After"] = str(max(1, math.ceil(wait or 1)))
    return response
