"""How the pages show time: in the school's zone (settings.TIME_ZONE, Asia/Kolkata) with its label,
in one format, whatever zone the server or the browser is in.

    format_datetime(moment) -> "1 Dec 2026, 14:05 IST"
    format_date(day)        -> "1 Dec 2026"
    format_time(moment)     -> "14:05 IST"   (in a list about one day)

Templates use the `when`, `day` and `time_of_day` filters (`{% load datetimes %}`), which call
these.
"""

from __future__ import annotations

import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import dateformat, timezone

# Django's date format characters: day without a leading zero, the month's short name, the year;
# 24-hour time; the zone's own abbreviation ("IST"), never an offset the staff must work out.
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i T"


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def school_zone() -> ZoneInfo:
    return _zone(settings.TIME_ZONE)


def school_now() -> datetime.datetime:
    return timezone.now().astimezone(school_zone())


def school_today() -> datetime.date:
    """Today in the school's zone: what "due today" and "today's payments" mean."""
    return school_now().date()


def school_day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) of `day` in the school's zone, as aware datetimes for a range filter."""
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=school_zone())
    return start, start + datetime.timedelta(days=1)


def _in_school_zone(value: datetime.datetime) -> datetime.datetime:
    if timezone.is_naive(value):
        # Naive datetimes do not come out of the ORM with USE_TZ; one that does is read as UTC
        # rather than as whatever zone the process happens to run in.
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(school_zone())


def format_datetime(value: datetime.datetime | None) -> str:
    if value is None:
        return ""
    return dateformat.format(_in_school_zone(value), DATETIME_FORMAT)


def format_time(value: datetime.datetime | None) -> str:
    """The time of day alone ("14:05 IST"), for a list that is about one day."""
    if value is None:
        return ""
    return dateformat.format(_in_school_zone(value), TIME_FORMAT)


def format_date(value: datetime.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        # A moment shown as a date is the school's calendar day, not the server's.
        value = value.astimezone(school_zone()).date() if timezone.is_aware(value) else value.date()
    return dateformat.format(value, DATE_FORMAT)
