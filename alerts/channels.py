"""Adapters for the places alerts go: founders' e-mail and chat/webhook URLs.

Each adapter has an explicit timeout and raises `DeliveryError`, which says whether trying again
can help or not: for webhooks timeouts, connection errors, 5xx and 429 can be retried, other 4xx
cannot; e-mail goes through core.mail, whose MailError decides (SMTP 4xx and connection errors
can be retried; 5xx and refused recipients cannot).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from core.mail import MailError, send_mail

EMAIL = "email"
SLACK = "slack"
DISCORD = "discord"
JSON = "json"
WEBHOOK_FORMATS = (SLACK, DISCORD, JSON)

SLACK_TEXT_LIMIT = 3000
DISCORD_CONTENT_LIMIT = 2000
DISCORD_EMBED_LIMIT = 4096
_ERROR_BODY_CHARS = 300


class DeliveryError(Exception):
    """A send that did not succeed. `retryable` says whether trying again later can help."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Channel:
    kind: str
    target: str
    label: str
    url: str = ""
    recipients: tuple[str, ...] = ()  # e-mail channels


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: str
    kind: str
    rule: str
    fingerprint: str
    facts: dict[str, Any]
    link: str
    created_at: datetime
    ack_url: str = ""  # the founders' acknowledge link, on messages about an alert that fires


def configured_channels() -> list[Channel]:
    """E-mail (when FOUNDER_ALERT_EMAILS is set) and one channel per ALERT_WEBHOOK_URLS entry."""
    emails = tuple(settings.FOUNDER_ALERT_EMAILS)
    channels = [Channel(EMAIL, "", ", ".join(emails), recipients=emails)] if emails else []
    return channels + _webhook_channels(settings.ALERT_WEBHOOK_URLS, label="")


def escalation_channels() -> list[Channel]:
    """Where an alert nobody acknowledged goes: ALERT_ESCALATION_EMAILS and _WEBHOOK_URLS."""
    emails = tuple(settings.ALERT_ESCALATION_EMAILS)
    channels = []
    if emails:
        # Its own target, so that an outbox row finds these recipients and not the founders'.
        target = "escalation:" + _target_for(",".join(emails))[:12]
        channels.append(
            Channel(EMAIL, target, "escalation " + ", ".join(emails), recipients=emails)
        )
    return channels + _webhook_channels(settings.ALERT_ESCALATION_WEBHOOK_URLS, label="escalation ")


def _webhook_channels(raw_urls: list[str], *, label: str) -> list[Channel]:
    channels = []
    for raw in raw_urls:
        fmt, url = parse_webhook_url(raw)
        host = urlsplit(url).hostname or "?"
        channels.append(Channel(fmt, _target_for(url), f"{label}{fmt} {host}", url))
    return channels


def find_channel(kind: str, target: str) -> Channel | None:
    for channel in configured_channels() + escalation_channels():
        if channel.kind == kind and channel.target == target:
            return channel
    return None


def parse_webhook_url(raw: str) -> tuple[str, str]:
    """`slack+https://…` → ("slack", "https://…"); without a prefix the host decides."""
    raw = raw.strip()
    scheme, sep, rest = raw.partition("+")
    if sep and scheme in WEBHOOK_FORMATS and rest.startswith(("http://", "https://")):
        return scheme, rest
    host = (urlsplit(raw).hostname or "").lower()
    if host == "hooks.slack.com":
        return SLACK, raw
    if host in ("discord.com", "discordapp.com") or host.endswith(".discord.com"):
        return DISCORD, raw
    return JSON, raw


def _target_for(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def send(channel: Channel, message: Message) -> None:
    if channel.kind == EMAIL:
        send_email(list(channel.recipients), message)
    else:
        send_webhook(channel.url, channel.kind, message)


# --- E-mail ---------------------------------------------------------------------------------


def send_email(recipients: list[str], message: Message) -> None:
    subject = f"[Plan Beta {message.severity.upper()}] {message.title}"[:200]
    lines = [message.body, ""]
    lines += [f"{key}: {value}" for key, value in message.facts.items()]
    if message.ack_url:
        lines += ["", f"Acknowledge (founders): {message.ack_url}"]
    if message.link:
        lines += ["", message.link]
    lines += ["", f"Alert: {message.fingerprint} ({message.kind})"]
    try:
        send_mail(subject=subject, body="\n".join(lines), to=recipients)
    except MailError as exc:
        raise DeliveryError(exc.reason, retryable=exc.retryable) from exc


# --- Webhooks -------------------------------------------------------------------------------


def webhook_payload(fmt: str, message: Message) -> dict[str, Any]:
    facts = [f"{key}: {value}" for key, value in message.facts.items()]
    if fmt == SLACK:
        text = "\n".join([f"*{_slack(message.title)}*", _slack(message.body), *map(_slack, facts)])
        links = [f"<{url}|{name}>" for name, url in _links(message)]
        return {
            "text": _slack(message.title),
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _fit(text, links, SLACK_TEXT_LIMIT)},
                }
            ],
        }
    if fmt == DISCORD:
        description = "\n".join([message.body, *facts])
        # The embed's title already links to `link`.
        links = [f"[Acknowledge]({message.ack_url})"] if message.ack_url else []
        embed: dict[str, Any] = {
            "title": message.title[:256],
            "description": _fit(description, links, DISCORD_EMBED_LIMIT),
            "color": _DISCORD_COLOURS.get(message.severity, 0x95A5A6),
            "timestamp": message.created_at.astimezone(UTC).isoformat(),
        }
        if message.link:
            embed["url"] = message.link
        return {
            "content": message.title[:DISCORD_CONTENT_LIMIT],
            "embeds": [embed],
            # An alert must never ping @everyone, whatever text ends up in it.
            "allowed_mentions": {"parse": []},
        }
    return {
        "version": "1",
        "status": "resolved" if message.kind == "RESOLVED" else "firing",
        "kind": message.kind,
        "rule": message.rule,
        "fingerprint": message.fingerprint,
        "severity": message.severity,
        "title": message.title,
        "text": message.body,
        "facts": message.facts,
        "link": message.link or None,
        "ackUrl": message.ack_url or None,
        "createdAt": message.created_at.astimezone(UTC).isoformat(),
    }


def _links(message: Message) -> list[tuple[str, str]]:
    return [
        (name, url)
        for name, url in (("Acknowledge", message.ack_url), ("Open", message.link))
        if url
    ]


def _fit(text: str, links: list[str], limit: int) -> str:
    # The text is cut to the receiver's limit, never the links after it: a long message must
    # still carry its acknowledge link.
    tail = "".join("\n" + link for link in links)
    return text[: max(0, limit - len(tail))] + tail


def _slack(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DISCORD_COLOURS = {"critical": 0xC0392B, "error": 0xE67E22, "warning": 0xF1C40F, "info": 0x27AE60}


def send_webhook(url: str, fmt: str, message: Message) -> None:
    data = json.dumps(webhook_payload(fmt, message)).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is operator configuration
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "planbeta-alerts/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise _http_error(exc) from exc
    except TimeoutError as exc:
        raise DeliveryError("timed out", retryable=True) from exc
    except urllib.error.URLError as exc:
        raise DeliveryError(f"unreachable: {exc.reason}"[:500], retryable=True) from exc
    except OSError as exc:
        raise DeliveryError(f"connection failed: {type(exc).__name__}", retryable=True) from exc


def _http_error(exc: urllib.error.HTTPError) -> DeliveryError:
    try:
        body = exc.read(_ERROR_BODY_CHARS).decode(errors="replace")
    except OSError:
        body = ""
    reason = f"HTTP {exc.code}: {body}".strip()
    if exc.code == 429:
        return DeliveryError(
            reason, retryable=True, retry_after=_retry_after(exc.headers.get("Retry-After"), body)
        )
    if exc.code >= 500 or exc.code == 408:
        return DeliveryError(reason, retryable=True)
    return DeliveryError(reason, retryable=False)


def _retry_after(header: str | None, body: str) -> float | None:
    """The wait a 429 asks for, in seconds; None when it names none we can use (the caller then
    backs off as for any transient failure, and caps what it is told)."""
    if header:
        try:
            value = float(header)
            return max(0.0, value) if math.isfinite(value) else None
        except ValueError:
            pass
        try:
            parsed = email.utils.parsedate_to_datetime(header)
            return max(0.0, (parsed - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            pass
    try:
        # Discord puts the wait (seconds, float) in the JSON body as well.
        value = float(json.loads(body).get("retry_after"))
        return max(0.0, value) if math.isfinite(value) else None
    except (ValueError, AttributeError, TypeError, RecursionError):
        return None
