from __future__ import annotations

import secrets
from typing import Any

from axes.models import AccessAttempt
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.auth import TOKEN_PREFIX, hash_token, loggable_email
from accounts.models import ApiToken, User
from audit.models import Action
from audit.services import audit_record


def user_create(*, email: str, name: str, role: str, password: str, actor: Any = None) -> User:
    """Create a staff account (and its USER_CREATED row)."""
    with transaction.atomic():
        user = User.objects.create_user(email, password, name=name, role=role)
        audit_record(
            Action.USER_CREATED,
            description=f"User {user.email} created with role {user.role}",
            entity=user,
            metadata={"email": user.email, "role": user.role},
            actor=actor,
        )
    return user


def api_token_issue(*, user: User, name: str = "", actor: Any = None) -> str:
    """Issue a bearer token for `user` and return it. It cannot be recovered later."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=raw[:10], key_hash=hash_token(raw)
        )
        audit_record(
            Action.API_TOKEN_ISSUED,
            description=f"API token {token.prefix}… issued for {user.email}",
            entity=token,
            metadata={"prefix": token.prefix, "forUser": user.email, "name": name},
            actor=actor,
        )
    return raw


def api_token_revoke(*, token: ApiToken, actor: Any = None) -> ApiToken:
    """Revoke a token; requests bearing it get 401 from then on."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_record(
                Action.API_TOKEN_REVOKED,
                description=f"API token {token.prefix}… of {token.user.email} revoked",
                entity=token,
                metadata={"prefix": token.prefix, "forUser": token.user.email},
                actor=actor,
            )
    token.refresh_from_db()
    return token


def lockout_clear(*, attempts: QuerySet[AccessAttempt], actor: Any = None) -> int:
    """Lift login lockouts: delete the failed-attempt rows, one LOCKOUT_CLEARED row for each.

    Returns how many were lifted. The founders do it in the admin (Axes → Access attempts);
    `manage.py lift_lockout` does it from a shell.
    """
    with transaction.atomic():
        rows = list(attempts.select_for_update().order_by("pk"))
        users = {
            user.email: user
            for user in User.objects.filter(
                email__in={row.username for row in rows if row.username}
            )
        }
        for row in rows:
            email = loggable_email(row.username or "")
            user = users.get(row.username or "")
            audit_record(
                Action.LOCKOUT_CLEARED,
                description=(
                    f"Login lockout lifted for {email or 'an empty e-mail'} "
                    f"from {row.ip_address or 'an unknown address'}"
                ),
                entity=user,
                entity_type="User",
                metadata={
                    "emailTried": email,
                    "address": row.ip_address,
                    "failures": row.failures_since_start,
                },
                actor=actor,
            )
        AccessAttempt.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)
