"""Who may touch leads, invoices, payments and students: founders and marketing (CONTRACT §3)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from accounts.models import Role

MONEY_ROLES = (Role.FOUNDER, Role.MARKETING)


def can_handle_money(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.role in MONEY_ROLES)


class IsMoneyStaff(BasePermission):
    """Anonymous → 401 (IsAuthenticated runs first), teacher → 403."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_handle_money(request.user)


def money_staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For pages: anonymous → login page, wrong role → 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_handle_money(request.user):
            raise PermissionDenied("Leads and money are for founders and marketing staff.")
        return view(request, *args, **kwargs)

    return wrapper
