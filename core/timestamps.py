"""Timestamps that clients send (a list cursor, the audit log's `since`): ISO 8601, read strictly.

Python accepts UTC offsets up to ±23:59 and years 1-9999 in any offset; PostgreSQL refuses
offsets beyond ±15:59, and a year-1 or year-9999 moment can fall off Python's calendar when it is
converted to UTC. Both used to reach the database and come back as a 500.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

MAX_LENGTH = 40  # "2026-01-31T23:59:59.999999+05:30" is 32
MAX_OFFSET = datetime.timedelta(hours=15, minutes=59)
TIMESTAMP_HELP = "Use an ISO 8601 date and time such as 2026-01-31T09:30:00+05:30."


def parse_timestamp(text: str) -> datetime.datetime:
    """An aware datetime (naive text is in the school's time zone). Raises ValueError."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH or not text.isascii():
        raise ValueError(TIMESTAMP_HELP)
    moment = parse_datetime(text)  # raises ValueError for an impossible date or offset
    if moment is None:
        raise ValueError(TIMESTAMP_HELP)
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        offset = moment.utcoffset()
        if offset is None or abs(offset) > MAX_OFFSET:
            raise ValueError("Use a UTC offset between -15:59 and +15:59.")
        moment.astimezone(datetime.UTC)
    except OverflowError as exc:
        raise ValueError("Use a date between the years 1 and 9999.") from exc
    return moment
