from __future__ import annotations

import secrets

from axes.models import AccessAttempt
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.actors import Actor
from accounts.auth import TOKEN_PREFIX, forget_unknown, hash_token, loggable_email
from accounts.models import ApiToken, Role, User
from audit.models import Action
from audit.services import AuditEntry, audit_record
from core.changes import apply_changes
from core.errors import ApplicationError, ConflictError


def user_create(*, email: str, name: str, role: str, password: str, actor: Actor = None) -> User:
    """Create a staff account (and its USER_CREATED row)."""
    with transaction.atomic():
        user = User.objects.create_user(email, password, name=name, role=role)
        audit_record(
            AuditEntry(
                Action.USER_CREATED,
                description=f"User {user.email} created with role {user.role}",
                entity=user,
                metadata={"email": user.email, "role": user.role},
                actor=actor,
            ),
        )
    return user


def api_token_issue(*, user: User, name: str = "", actor: Actor = None) -> str:
    """Issue a bearer token for `user` and return it. It cannot be recovered later."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=raw[:10], key_hash=hash_token(raw)
        )
        audit_record(
            AuditEntry(
                Action.API_TOKEN_ISSUED,
                description=f"API token {token.prefix}… issued for {user.email}",
                entity=token,
                metadata={"prefix": token.prefix, "forUser": user.email, "name": name},
                actor=actor,
            ),
        )
        # After the commit: a lookup running meanwhile cannot see the row yet and would
        # remember the miss again.
        transaction.on_commit(lambda: forget_unknown(token.key_hash))
    return raw


def api_token_revoke(*, token: ApiToken, actor: Actor = None) -> ApiToken:
    """Revoke a token; requests bearing it get 401 from then on."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_record(
                AuditEntry(
                    Action.API_TOKEN_REVOKED,
                    description=f"API token {token.prefix}… of {token.user.email} revoked",
                    entity=token,
                    metadata={"prefix": token.prefix, "forUser": token.user.email},
                    actor=actor,
                ),
            )
    token.refresh_from_db()
    return token


def lockout_clear(*, attempts: QuerySet[AccessAttempt], actor: Actor = None) -> int:
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
                AuditEntry(
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
                ),
            )
        AccessAttempt.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


# --- founders managing users on the web --------------------------------------------------------

LAST_FOUNDER_MESSAGE = (
    "This would leave no active founder, and with none nobody could manage users or read the "
    "audit log. Make someone else a founder first."
)


def _lock_user(user_id: int) -> User:
    return User.objects.select_for_update().get(pk=user_id)


def _lock_with_founders(user_id: int) -> tuple[User, list[int]]:
    """Lock every active founder's row (in id order), then the user's, and return both.

    Every change of a role or of who is active takes the founders' rows first, in one order: two
    founders demoting each other at the same moment then run one after the other (no deadlock),
    and the second sees the first's change. A check without the lock would let both pass and
    leave no founder.
    """
    founders = list(
        User.objects.select_for_update()
        .filter(role=Role.FOUNDER, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return _lock_user(user_id), founders


def _keep_an_active_founder(user: User, founders: list[int], *, role: str, active: bool) -> None:
    """Refuse a change that would take away the last active founder."""
    stays_founder = role == Role.FOUNDER and active
    if user.pk in founders and not stays_founder and len(founders) == 1:
        raise ConflictError(LAST_FOUNDER_MESSAGE, code="last_active_founder")


def user_update(*, user: User, actor: Actor, name: str, role: str) -> User:
    """Change a user's name and role; USER_UPDATED records each change with before and after."""
    if role not in Role.values:
        raise ApplicationError(
            "Choose a role.", code="invalid_role", details={"role": ["Choose a role."]}
        )
    with transaction.atomic():
        user, founders = _lock_with_founders(user.pk)
        _keep_an_active_founder(user, founders, role=role, active=user.is_active)
        diff = apply_changes(user, {"name": name, "role": role})
        if diff:
            user.save(update_fields=["name", "role"])
            audit_record(
                AuditEntry(
                    Action.USER_UPDATED,
                    description=f"User {user.email} updated: {', '.join(sorted(diff))}",
                    entity=user,
                    metadata={"email": user.email, "changes": diff},
                    actor=actor,
                ),
            )
    return user


def user_set_active(*, user: User, actor: Actor, active: bool) -> User:
    """Deactivate (they can no longer log in, and their sessions and tokens stop working at once)
    or reactivate a user: USER_DEACTIVATED or USER_REACTIVATED."""
    with transaction.atomic():
        user, founders = _lock_with_founders(user.pk)
        if user.is_active == active:
            return user
        _keep_an_active_founder(user, founders, role=user.role, active=active)
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit_record(
            AuditEntry(
                Action.USER_REACTIVATED if active else Action.USER_DEACTIVATED,
                description=f"User {user.email} {'reactivated' if active else 'deactivated'}",
                entity=user,
                metadata={
                    "email": user.email,
                    "role": user.role,
                    "changes": {"isActive": {"before": not active, "after": active}},
                },
                actor=actor,
            ),
        )
    return user


def user_set_password(*, user: User, actor: Actor, password: str) -> User:
    """Give a user a new password (a founder's reset, or the user's own change).

    Every session of that user ends, since Django ties a session to the password hash; the
    caller keeps its own with update_session_auth_hash when the user changed their own.
    """
    own = actor is not None and getattr(actor, "pk", None) == user.pk
    with transaction.atomic():
        user = _lock_user(user.pk)
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record(
            AuditEntry(
                Action.USER_PASSWORD_CHANGED if own else Action.USER_PASSWORD_RESET,
                description=(
                    f"{user.email} changed their password"
                    if own
                    else f"Password of {user.email} reset by a founder"
                ),
                entity=user,
                metadata={"email": user.email},
                actor=actor,
            ),
        )
    return user


def generate_password() -> str:
    """A password to hand over once: 16 characters from an alphabet without look-alikes."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))
