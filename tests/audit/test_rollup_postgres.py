"""The minute counts against what only PostgreSQL shows: rows that commit out of id order, and
folds and reads running at once on their own connections."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from audit import chain, rollup
from audit.models import AuditLog, AuditMinuteCount, AuditRollupState, ChainState
from tests.audit.test_chain_postgres import seal_until_horizon
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

HOUR = timedelta(hours=1)


def counted(now) -> int:
    return sum(rollup.window_counts(now=now, window=HOUR).values())


def folded() -> int:
    return AuditMinuteCount.objects.aggregate(n=Sum("count"))["n"] or 0


def test_a_row_that_commits_after_a_younger_one_is_folded_once_and_never_missed():
    at = timezone.now() - timedelta(minutes=10)  # a whole minute of the window: the rollup's
    with transaction.atomic(using="audit"):
        older = AuditLog.objects.using("audit").create(
            action="LEAD_UPDATED", description="slow", created_at=at
        )
        younger = AuditLog.objects.create(action="LEAD_UPDATED", description="quick", created_at=at)
        assert older.pk < younger.pk
        for _ in range(5):
            chain.seal_batch()
            rollup.fold()
        # The older row's transaction still runs: the horizon, and so the fold, stay below it.
        assert AuditRollupState.objects.get().folded_to_id < older.pk
        assert ChainState.objects.get().horizon_id < older.pk
        assert counted(timezone.now()) == 1  # the younger one, from the tail

    # Committed: counted at once (from the tail), then folded with the younger one, each once.
    assert counted(timezone.now()) == 2
    seal_until_horizon(younger.pk)
    rollup.fold()
    assert AuditRollupState.objects.get().folded_to_id >= younger.pk
    assert folded() == 2
    assert counted(timezone.now()) == 2


def test_folds_and_reads_running_at_once_count_every_row_exactly_once(settings):
    at = timezone.now() - timedelta(minutes=20)
    written = AuditLog.objects.bulk_create(
        AuditLog(action="LEAD_UPDATED", description="x", created_at=at) for _ in range(60)
    )
    seal_until_horizon(written[-1].pk)
    now = timezone.now()
    settings.AUDIT_ROLLUP_FOLD_IDS = 4  # many small folds, so that reads fall between them

    def read_many() -> list[int]:
        return [counted(now) for _ in range(15)]

    results = run_concurrently([rollup.fold, rollup.fold, read_many, read_many, read_many])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(n == 60 for reads in results[2:] for n in reads), results[2:]
    assert folded() == 60
    assert AuditRollupState.objects.get().folded_to_id >= written[-1].pk
