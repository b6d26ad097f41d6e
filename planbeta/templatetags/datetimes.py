"""`{{ moment|when }}` → "1 Dec 2026, 14:05 IST", `{{ day|day }}` → "1 Dec 2026",
`{{ moment|time_of_day }}` → "14:05 IST" (core.timefmt)."""

from __future__ import annotations

import datetime

from django import template

from core.timefmt import format_date, format_datetime, format_time

register = template.Library()


@register.filter
def when(value: datetime.datetime | None) -> str:
    return format_datetime(value)


@register.filter
def day(value: datetime.date | None) -> str:
    return format_date(value)


@register.filter
def time_of_day(value: datetime.datetime | None) -> str:
    return format_time(value)
