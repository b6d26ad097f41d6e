"""Saying so, loudly, when alerts would go to nobody.

With neither FOUNDER_ALERT_EMAILS nor ALERT_WEBHOOK_URLS set the rules still run and record their
notifications, but no person hears of a failed payment. That is told in three places: a system
check (`manage.py check --deploy`), a WARNING line when the web, worker and beat processes start,
and the `alerting` check of the detailed health body (monitoring.checks), which is `degraded`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core import checks

from alerts.channels import configured_channels

logger = logging.getLogger(__name__)

NO_CHANNEL_MESSAGE = "No alert channel configured: alerts are recorded but reach nobody."
NO_CHANNEL_HINT = "Set FOUNDER_ALERT_EMAILS or ALERT_WEBHOOK_URLS (or both)."


def channel_kinds() -> list[str]:
    """The kinds of the configured channels (email, slack, discord, json), each once, in order."""
    return list(dict.fromkeys(channel.kind for channel in configured_channels()))


@checks.register("alerts", deploy=True)
def check_alert_channels(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if channel_kinds():
        return []
    return [checks.Warning(NO_CHANNEL_MESSAGE, hint=NO_CHANNEL_HINT, id="alerts.W001")]


def warn_if_no_channel(process: str) -> bool:
    """Log the missing channel at WARNING when a process starts; True if it was missing."""
    if channel_kinds():
        return False
    logger.warning("%s process started. %s %s", process, NO_CHANNEL_MESSAGE, NO_CHANNEL_HINT)
    return True
