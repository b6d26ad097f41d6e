from __future__ import annotations

import itertools
import secrets
from typing import Any

from accounts.auth import TOKEN_PREFIX, hash_token
from accounts.models import ApiToken, Role, User
from leads.models import Lead, LeadSource

_seq = itertools.count(1)


def make_user(
    *,
    email: str | None = None,
    name: str = "Staff Member",
    role: str = Role.MARKETING,
    password: str = "irrelevant-password-123",
    **fields: Any,
) -> User:
    n = next(_seq)
    return User.objects.create_user(
        email or f"user{n}@example.com", password, name=name, role=role, **fields
    )


def make_lead(**fields: Any) -> Lead:
    n = next(_seq)
    defaults: dict[str, Any] = {
        "name": f"Lead {n}",
        "whatsapp": f"+9198470{n:05d}",
        "email": f"lead{n}@example.com",
        "source": LeadSource.META_ADS,
    }
    defaults.update(fields)
    return Lead.objects.create(**defaults)


def make_token(user: User) -> str:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name="tests", prefix=raw[:10], key_hash=hash_token(raw))
    return raw
