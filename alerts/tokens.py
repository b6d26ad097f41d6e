"""Acknowledge links: signed with the secret key, expiring, naming one alert and one version.

A link is `TimestampSigner(salt=…)` over `{"f": fingerprint, "v": version}`; nothing about it is
stored. The signature proves we wrote it, the timestamp makes it expire (ALERT_ACK_LINK_HOURS
after the message was sent), and `AlertState.ack_version` makes it single-use: an acknowledgement
spends every link signed for the alert's version at that moment or an older one. A random token
stored hashed would work as well, but the outbox would then have to keep the raw token in the
message row until delivery; a signature keeps no secret in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "planbeta.alerts.acknowledge"


class InvalidLink(Exception):
    """Not a link we signed: forged, tampered with or cut short."""


class ExpiredLink(InvalidLink):
    """Signed by us, but longer ago than ALERT_ACK_LINK_HOURS."""


@dataclass(frozen=True)
class AckRef:
    fingerprint: str
    version: int


def sign(fingerprint: str, version: int) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"f": fingerprint, "v": version})


def read(token: str) -> AckRef:
    max_age = timedelta(hours=settings.ALERT_ACK_LINK_HOURS)
    try:
        payload = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise ExpiredLink from exc
    except (signing.BadSignature, ValueError) as exc:
        raise InvalidLink from exc
    if not isinstance(payload, dict):
        raise InvalidLink
    fingerprint, version = payload.get("f"), payload.get("v")
    if not isinstance(fingerprint, str) or type(version) is not int or version < 1:
        raise InvalidLink
    return AckRef(fingerprint, version)


def ack_url(fingerprint: str, version: int) -> str:
    """The absolute link for a message; empty without ALERT_BASE_URL (there is no site to open)."""
    base = settings.ALERT_BASE_URL.rstrip("/")
    if not base:
        return ""
    return base + reverse("alerts:acknowledge", args=[sign(fingerprint, version)])
