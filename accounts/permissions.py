"""Who may do what (CONTRACT §3): every role check of the project lives here.

Founders: everything, including the audit log, the activity dashboard and the detailed health body.
Founders and marketing: leads, invoices, payments and students. Teachers: none of those.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from rest_framework.permissions import BasePermission

from accounts.actors import Actor
from accounts.models import Role

MONEY_ROLES = (Role.FOUNDER, Role.MARKETING)


def is_founder(user: Actor) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.role == Role.FOUNDER)


def can_handle_money(user: Actor) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.role in MONEY_ROLES)


class IsFounder(BasePermission):
    """Anonymous → 401 (IsAuthenticated runs first), marketing and teacher → 403."""

    message = "Only founders may read the audit log."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_founder(request.user)


class IsMoneyStaff(BasePermission):
    """Anonymous → 401 (IsAuthenticated runs first), teacher → 403."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_handle_money(request.user)


def _page_for(
    allowed: Callable[[Any], bool], refusal: str
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """For pages: anonymous → login page, wrong role → 403 with `refusal`."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not allowed(request.user):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


money_staff_required = _page_for(
    can_handle_money, "Leads and money are for founders and marketing staff."
)
founder_required = _page_for(is_founder, "The activity dashboard is for founders.")
alert_ack_required = _page_for(is_founder, "Only founders acknowledge alerts.")
users_page_required = _page_for(is_founder, "Managing users and their API tokens is for founders.")


def login_page_for_browsers(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """For an API page that people open in a browser (the API docs): a visitor who is not
    logged in gets the login page, which comes back here, rather than the API's JSON 401. A
    caller that sends credentials of its own (a bearer token) is left to the view."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated and "HTTP_AUTHORIZATION" not in request.META:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper
