"""The adapter to an external dead man's switch (healthchecks.io style).

The switch expects a ping every so often and alerts when none comes: so a host that is completely
dead, whose own alerts die with it, still pages someone. A ping is a POST to DEADMAN_PING_URL, or
to DEADMAN_PING_URL + "/fail" to report a failed run at once; its body (a small JSON summary:
statuses and check names, nothing personal) shows in the switch's log.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

logger = logging.getLogger(__name__)


def fail_url(url: str) -> str:
    """URL + "/fail", on the path (a query string stays at the end)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def ping(*, fail: bool, summary: dict[str, object]) -> bool:
    """Ping the switch within DEADMAN_PING_TIMEOUT; True when it answered 2xx. Never raises."""
    url = settings.DEADMAN_PING_URL
    if not url:
        return False
    request = urllib.request.Request(  # noqa: S310 - the URL is operator configuration
        fail_url(url) if fail else url,
        data=json.dumps(summary).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "planbeta-deadman"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.DEADMAN_PING_TIMEOUT) as response:  # noqa: S310
            response.read(1024)
    except (OSError, ValueError) as exc:
        # The URL is the switch's secret (whoever has it can ping): the log names the error only.
        # urllib's HTTPError and URLError are OSErrors; a malformed URL is a ValueError.
        logger.warning("deadman: ping failed (%s)", type(exc).__name__)
        return False
    return True
