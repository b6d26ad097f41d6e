from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ApiToken, Role, User


def user_list(*, q: str = "", role: str = "", active: bool | None = None) -> QuerySet[User]:
    """Staff accounts, filtered; the caller orders and pages."""
    qs = User.objects.all()
    if role:
        qs = qs.filter(role=role)
    if active is not None:
        qs = qs.filter(is_active=active)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(email__icontains=q))
    return qs


def user_get(user_id: int) -> User:
    """One staff account, active or not; Http404 when there is none with that id."""
    return get_object_or_404(User, pk=user_id)


def user_token_list(user: User) -> QuerySet[ApiToken]:
    """A user's tokens, active ones first, newest first."""
    return ApiToken.objects.filter(user=user).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-pk"
    )


def user_token_get(user: User, token_id: int) -> ApiToken:
    """One of this user's tokens, revoked or not; Http404 for another user's or none."""
    return get_object_or_404(ApiToken.objects.select_related("user"), pk=token_id, user=user)


def active_founders() -> QuerySet[User]:
    """Whom to ask for access: the founders who can log in."""
    return User.objects.filter(role=Role.FOUNDER, is_active=True).order_by("name")


def user_name_or_none(user_id: int) -> str | None:
    """The user's name for a heading, or None when there is no such user (any more)."""
    return User.objects.filter(pk=user_id).values_list("name", flat=True).first()


def user_names(ids: Iterable[int]) -> dict[int, str]:
    """{id: name (or e-mail when unnamed)} of these users, in one query: the names the audit
    feed shows for entities that are users."""
    return {
        pk: name or email
        for pk, name, email in User.objects.filter(pk__in=list(ids))
        .order_by()
        .values_list("pk", "name", "email")
    }
