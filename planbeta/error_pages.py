"""Django's error pages, in JSON under /api/ (CONTRACT §2: every answer there is JSON).

API views answer their own errors through `planbeta.errors.api_exception_handler`. These are for
what happens outside a view: a path no route matches (404), a request Django refuses before
routing (400, e.g. a forbidden Host). Pages keep Django's. A failure outside a view (500, or 503
when the database is the cause) is `planbeta.errors.server_error`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from planbeta.errors import error_body
from planbeta.middleware import is_api_request, json_response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_response(error_body("The request could not be understood.", "bad_request"), 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_response(
            error_body("You do not have permission to do this.", "permission_denied"), 403
        )
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_response(error_body("There is nothing at this address.", "not_found"), 404)
    return defaults.page_not_found(request, exception)
