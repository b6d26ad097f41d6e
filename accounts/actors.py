"""Who a service acts for, as its `actor` argument, and the request of a signed-in user."""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.models import User

# `request.user` as views and the admin hand it on. AnonymousUser is in the type although no
# anonymous request reaches a service: the permission check that rules it out runs before the view,
# where mypy cannot see it (the audit row of an anonymous actor simply names no user). None: the
# system, a task or a command; the audit row then names the user of the audit context, if any.
Actor: TypeAlias = User | AnonymousUser | None


def acting_user(actor: Actor) -> User | None:
    """The actor as the value of a user foreign key (`created_by`, `recorded_by`), or None."""
    return actor if isinstance(actor, User) else None


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind login_required, typed so: its user is a User."""

    user: User
