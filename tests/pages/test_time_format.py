"""One time zone and one format on every page: the school's (Asia/Kolkata, "IST")."""

import datetime
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import timezone

from core.timefmt import format_date, format_datetime, format_time, school_day_bounds

ROOT = Path(__file__).resolve().parents[2]
UTC = datetime.UTC


def test_a_moment_is_shown_in_india_time_with_its_label():
    moment = datetime.datetime(2026, 12, 1, 8, 35, tzinfo=UTC)

    assert format_datetime(moment) == "1 Dec 2026, 14:05 IST"
    assert format_time(moment) == "14:05 IST"


def test_the_format_does_not_follow_the_zone_a_request_activated(settings):
    moment = datetime.datetime(2026, 12, 1, 8, 35, tzinfo=UTC)

    with timezone.override("Europe/Berlin"):
        shown = format_datetime(moment)

    assert shown == "1 Dec 2026, 14:05 IST"


def test_an_evening_in_utc_is_the_next_day_in_india():
    moment = datetime.datetime(2026, 12, 31, 20, 0, tzinfo=UTC)

    assert format_datetime(moment) == "1 Jan 2027, 01:30 IST"
    assert format_date(moment) == "1 Jan 2027"


def test_a_date_is_shown_without_a_time():
    assert format_date(datetime.date(2026, 3, 9)) == "9 Mar 2026"


def test_nothing_is_shown_for_no_value():
    assert (format_datetime(None), format_date(None), format_time(None)) == ("", "", "")


def test_a_naive_moment_is_read_as_utc_not_as_the_servers_zone():
    assert format_datetime(datetime.datetime(2026, 12, 1, 8, 35)) == "1 Dec 2026, 14:05 IST"


def test_the_school_day_runs_from_midnight_to_midnight_india_time():
    start, end = school_day_bounds(datetime.date(2026, 12, 1))

    assert start == datetime.datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    assert end == datetime.datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def test_the_template_filters_use_the_same_format():
    rendered = Template(
        "{% load datetimes %}{{ m|when }} | {{ d|day }} | {{ m|time_of_day }}"
    ).render(
        Context(
            {
                "m": datetime.datetime(2026, 12, 1, 8, 35, tzinfo=UTC),
                "d": datetime.date(2026, 12, 24),
            }
        )
    )

    assert rendered == "1 Dec 2026, 14:05 IST | 24 Dec 2026 | 14:05 IST"


HAND_MADE_FORMAT = re.compile(r"\|\s*(date|time)\s*:|\|\s*(date|time)\s*}}")


@pytest.mark.parametrize(
    "template",
    sorted(str(p.relative_to(ROOT / "templates")) for p in (ROOT / "templates").rglob("*.html")),
)
def test_templates_format_time_only_through_the_shared_filters(template):
    text = (ROOT / "templates" / template).read_text()

    assert not HAND_MADE_FORMAT.search(text), f"{template} formats a date by hand"
