"""The minute counts behind the 24 h stats, the hourly chart, the error rate and the activity
counts (audit.rollup): every read equals a COUNT over the rows of the same window, however much
of the trail is folded, wherever the window's edges fall, and whatever order rows commit in."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from audit import rollup
from audit.models import (
    AuditHourCount,
    AuditLog,
    AuditMinuteCount,
    AuditRollupState,
    ChainState,
)
from audit.selectors import activity_counts, audit_log_stats, error_rate, in_window

pytestmark = pytest.mark.django_db

# A quarter past the hour in UTC is a quarter to the hour in Kolkata (UTC+5:30, TIME_ZONE): the
# hours of the chart are local ones, the minutes of the rollup UTC.
NOW = datetime(2026, 11, 30, 10, 15, 42, 123456, tzinfo=UTC)


def rows(at: datetime, n: int = 1, *, action: str = "LEAD_UPDATED", severity: str = "INFO"):
    return AuditLog.objects.bulk_create(
        AuditLog(action=action, severity=severity, description="x", created_at=at) for _ in range(n)
    )


def settle_all() -> int:
    """Move the chain's horizon over every row written so far: the sealer would, once their
    transactions ended (the PostgreSQL tests below let the real sealer do it)."""
    top = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    ChainState.objects.update_or_create(pk=1, defaults={"horizon_id": top})
    return top


def counted_from_the_rows(now: datetime, window: timedelta) -> Counter:
    """What the window's rows say, counted one by one: the reference every read must equal."""
    grouped = (
        in_window(AuditLog.objects.all(), now=now, window=window)
        .annotate(hour=TruncHour("created_at"))
        .values_list("hour", "action", "severity")
        .annotate(n=Count("*"))
        .order_by()
    )
    return Counter({(hour, action, severity): n for hour, action, severity, n in grouped})


def a_day_of_rows(now: datetime) -> None:
    """Rows on both sides of every edge a read has: the window's (exclusive) start and its
    (inclusive) end, their minutes, and the local and UTC hours in between."""
    start = now - timedelta(hours=24)
    for moment in (
        start - timedelta(microseconds=1),
        start,  # a row exactly one window old has left it
        start + timedelta(microseconds=1),
        start.replace(second=59, microsecond=999999),  # the end of the first, partial minute
        start.replace(second=0, microsecond=0) + timedelta(minutes=1),  # the first whole one
        now.replace(minute=0, second=0, microsecond=0),  # a UTC hour, half past in Kolkata
        now.replace(minute=30, second=0, microsecond=0) - timedelta(hours=1),  # a local hour
        now.replace(second=0, microsecond=0) - timedelta(microseconds=1),  # the last whole minute
        now.replace(second=0, microsecond=0),  # the start of the last, partial minute
        now,  # included
        now + timedelta(microseconds=1),  # not yet
    ):
        rows(moment, 2)
        rows(moment, severity="ERROR", action="EMAIL_FAILED")
    for hour in range(26):
        rows(now - timedelta(hours=hour, minutes=7), 3, action="PAYMENT_RECEIVED")
        rows(now - timedelta(hours=hour, minutes=41), severity="CRITICAL", action="DATABASE_ERROR")


def test_a_folded_day_reads_exactly_what_its_rows_count_at_every_edge():
    a_day_of_rows(NOW)
    settle_all()
    assert rollup.fold().rows == AuditLog.objects.count()

    counts = rollup.window_counts(now=NOW, window=timedelta(hours=24))
    assert counts == counted_from_the_rows(NOW, timedelta(hours=24))
    # Not only the reference agreeing with itself: 8 of the 11 moments (3 rows each) are inside,
    # and 24 of the 26 hours (4 rows each).
    assert sum(counts.values()) == 8 * 3 + 24 * 4


def test_the_stats_stay_exact_as_time_moves_across_hour_boundaries_with_half_the_rows_folded():
    with time_machine.travel(NOW, tick=False) as clock:
        a_day_of_rows(NOW)
        settle_all()
        rollup.fold()
        for step in (0, 13 * 60 + 0.5, 47 * 60, 60 * 60, 61 * 60 + 17):
            clock.move_to(NOW + timedelta(seconds=step))
            rows(timezone.now() - timedelta(seconds=20), 5, action="LOGIN")  # above the mark
            if step % 2:
                settle_all()
                rollup.fold()
            now = timezone.now()
            expected = counted_from_the_rows(now, timedelta(hours=24))
            stats = audit_log_stats(now=now)
            assert stats["total_logs"] == sum(expected.values())
            assert stats["error_count"] == sum(
                n for (_, _, severity), n in expected.items() if severity == "ERROR"
            )
            current = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
            assert [(h["hour"], h["total"]) for h in stats["hourly"]] == [
                (hour, sum(n for (at, _, _), n in expected.items() if at == hour))
                for hour in (current - timedelta(hours=i) for i in range(23, -1, -1))
            ]


def test_a_window_shorter_than_a_minute_and_one_within_a_minute_count_the_rows_themselves():
    a_day_of_rows(NOW)
    settle_all()
    rollup.fold()
    for window in (timedelta(seconds=30), timedelta(seconds=61), timedelta(minutes=2)):
        assert rollup.window_counts(now=NOW, window=window) == counted_from_the_rows(NOW, window)


def test_folding_again_changes_nothing_and_every_row_is_counted_once():
    a_day_of_rows(NOW)
    settle_all()
    first = rollup.fold()
    again = rollup.fold()
    assert (again.rows, again.folded_to_id) == (0, first.folded_to_id)
    total = AuditMinuteCount.objects.aggregate(n=Sum("count"))["n"]
    assert total == AuditLog.objects.count() == first.rows


def test_a_fold_in_small_batches_adds_up_to_one_big_fold(settings):
    a_day_of_rows(NOW)
    top = settle_all()
    settings.AUDIT_ROLLUP_FOLD_IDS = 7
    run = rollup.fold_batch()
    assert run.folded_to_id == AuditRollupState.objects.get().folded_to_id < top
    assert rollup.window_counts(now=NOW, window=timedelta(hours=24)) == counted_from_the_rows(
        NOW, timedelta(hours=24)
    )
    rollup.fold()
    assert AuditRollupState.objects.get().folded_to_id == top
    assert AuditMinuteCount.objects.aggregate(n=Sum("count"))["n"] == AuditLog.objects.count()


def test_without_beat_nothing_is_folded_and_every_read_is_still_exact():
    # No fold ever ran (no mark yet), then the horizon stops below the newest rows: the tail is
    # everything above the mark, read from the rows.
    a_day_of_rows(NOW)
    assert not AuditRollupState.objects.exists()
    assert rollup.window_counts(now=NOW, window=timedelta(hours=24)) == counted_from_the_rows(
        NOW, timedelta(hours=24)
    )
    settle_all()
    rollup.fold()
    rows(NOW - timedelta(minutes=5), 4, severity="ERROR", action="API_ERROR")  # never folded
    rows(NOW - timedelta(hours=3), 2, severity="WARNING")
    assert rollup.window_counts(now=NOW, window=timedelta(hours=24)) == counted_from_the_rows(
        NOW, timedelta(hours=24)
    )
    # The unfolded API errors and the folded e-mail failures at 10:00 and 9:30.
    assert error_rate(now=NOW - timedelta(minutes=1)).errors == 4 + 2


def test_the_fold_never_passes_the_chains_horizon():
    rows(NOW - timedelta(minutes=10), 3)
    horizon = settle_all()
    rows(NOW - timedelta(minutes=10), 2)  # not settled yet
    assert rollup.fold().folded_to_id == horizon
    assert AuditMinuteCount.objects.get().count == 3
    assert sum(rollup.window_counts(now=NOW, window=timedelta(hours=1)).values()) == 5


def test_refused_logins_count_in_the_stats_but_not_in_the_error_rate_once_folded():
    rows(NOW - timedelta(minutes=20), 90)
    rows(NOW - timedelta(minutes=20), 10, severity="ERROR", action="API_ERROR")
    rows(NOW - timedelta(minutes=20), 400, severity="WARNING", action="LOGIN_FAILED")
    settle_all()
    rollup.fold()
    rate = error_rate(now=NOW)
    assert (rate.errors, rate.critical, rate.total, rate.percent) == (10, 0, 100, 10.0)
    assert audit_log_stats(now=NOW)["total_logs"] == 500


def test_activity_counts_successful_money_rows_of_48_hours_with_old_minutes_pruned(settings):
    settings.AUDIT_ROLLUP_KEEP_DAYS = 1
    for hours in (1, 23, 30, 47, 49):
        rows(NOW - timedelta(hours=hours), action="PAYMENT_RECEIVED")
        rows(NOW - timedelta(hours=hours), action="LEAD_TO_STUDENT_CONVERSION", severity="ERROR")
    rows(NOW - timedelta(hours=2), 2, action="LEAD_TO_STUDENT_CONVERSION")
    settle_all()
    with time_machine.travel(NOW, tick=False):
        rollup.fold()
    # Minutes older than a day were never kept; the read counts those hours from the rows.
    assert AuditMinuteCount.objects.filter(minute__lt=NOW - timedelta(days=1)).count() == 0
    assert AuditRollupState.objects.get().complete_from <= NOW - timedelta(days=1)
    activity = activity_counts(now=NOW, window=timedelta(hours=48))
    assert (activity.conversions, activity.payments) == (2, 4)


def test_minutes_older_than_the_kept_days_are_pruned_and_read_from_the_rows(settings):
    settings.AUDIT_ROLLUP_KEEP_DAYS = 1
    a_day_of_rows(NOW)
    settle_all()
    with time_machine.travel(NOW - timedelta(hours=5), tick=False):
        rollup.fold()  # keeps minutes from 29 hours before NOW
    assert AuditMinuteCount.objects.filter(minute__lt=NOW - timedelta(hours=24)).exists()
    with time_machine.travel(NOW, tick=False):
        assert rollup.fold().pruned > 0
    kept_from = (NOW - timedelta(days=1)).replace(second=0, microsecond=0)
    assert AuditRollupState.objects.get().complete_from == kept_from
    assert not AuditMinuteCount.objects.filter(minute__lt=kept_from).exists()
    for window in (timedelta(hours=24), timedelta(hours=26)):
        assert rollup.window_counts(now=NOW, window=window) == counted_from_the_rows(NOW, window)


def test_a_fold_that_commits_during_a_read_makes_it_read_again_not_count_twice(monkeypatch):
    rows(NOW - timedelta(minutes=30), 6)
    settle_all()
    real = rollup._hour_counts
    calls = []

    def fold_in_between(parts):
        # A fold commits after the read took the mark and before its counts: the first read
        # then sees rows both in the rollup and in the tail above the old mark.
        if not calls:
            rollup.fold()
        calls.append(1)
        return real(parts)

    monkeypatch.setattr(rollup, "_hour_counts", fold_in_between)
    assert sum(rollup.window_counts(now=NOW, window=timedelta(hours=1)).values()) == 6
    assert len(calls) == 2


def test_the_hour_counts_follow_a_changed_time_zone_and_reads_stay_exact_meanwhile(settings):
    a_day_of_rows(NOW)
    settle_all()
    rollup.fold()
    # Kolkata's hours start at half past UTC's.
    assert {
        h.astimezone(UTC).minute for h in AuditHourCount.objects.values_list("hour", flat=True)
    } == {30}
    settings.TIME_ZONE = "Europe/Berlin"
    day = timedelta(hours=24)
    assert rollup.window_counts(now=NOW, window=day) == counted_from_the_rows(NOW, day)
    rollup.fold()
    assert AuditRollupState.objects.get().hour_zone == "Europe/Berlin"
    assert {
        h.astimezone(UTC).minute for h in AuditHourCount.objects.values_list("hour", flat=True)
    } == {0}
    assert AuditHourCount.objects.aggregate(n=Sum("count"))["n"] == AuditLog.objects.count()
    assert rollup.window_counts(now=NOW, window=day) == counted_from_the_rows(NOW, day)


def test_beats_fold_task_folds_up_to_the_horizon():
    from audit.tasks import fold_rollup

    rows(NOW - timedelta(minutes=3), 4)
    top = settle_all()
    assert fold_rollup.delay().get() == 4
    assert AuditRollupState.objects.get().folded_to_id == top


def test_a_fold_starts_at_the_next_row_not_at_the_mark_across_a_gap_in_the_ids(settings):
    settings.AUDIT_ROLLUP_FOLD_IDS = 5
    rows(NOW - timedelta(minutes=2))
    settle_all()
    rollup.fold()
    # Ids 1,000 above the last one (a sequence that jumped, or archived months): one batch of 5
    # ids still reaches the new row.
    gap = AuditLog.objects.order_by("-id").values_list("id", flat=True)[0] + 1000
    AuditLog.objects.create(id=gap, action="LOGIN", description="x", created_at=NOW)
    settle_all()
    run = rollup.fold_batch()
    assert (run.rows, run.folded_to_id, run.more) == (1, gap, False)
    assert AuditMinuteCount.objects.filter(action="LOGIN").get().count == 1
