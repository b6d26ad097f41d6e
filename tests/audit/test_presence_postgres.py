"""The presence fold (audit.presence) against what only committed transactions on their own
connections show: a row that commits after a younger one is never left out of its months, and a
fold that finds another holding the mark writes nothing."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit import chain, presence
from audit.models import AuditKeyMonth, AuditKindMonth, AuditLog, AuditPresenceState
from tests.audit.test_chain_postgres import seal_until_horizon

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]


def _request_months(request_id: str) -> tuple:
    return presence.of_key(presence.Kind.REQUEST_ID, request_id).months


def test_a_row_that_commits_after_a_younger_one_is_folded_and_never_missed():
    with transaction.atomic(using="audit"):
        older = AuditLog.objects.using("audit").create(
            action="LEAD_UPDATED", description="slow", request_id="req-slow"
        )
        younger = AuditLog.objects.create(
            action="LEAD_UPDATED", description="quick", request_id="req-quick"
        )
        assert older.pk < younger.pk
        for _ in range(5):
            chain.seal_batch()
            presence.fold()
        # The older row's transaction still runs: the horizon, and so the mark, stay below it.
        assert AuditPresenceState.objects.get().folded_to_id < older.pk
        assert _request_months("req-quick") == ()  # above the mark: read from the trail
    seal_until_horizon(younger.pk)
    presence.fold()
    assert AuditPresenceState.objects.get().folded_to_id >= younger.pk
    month = older.created_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert _request_months("req-slow") == (month,)
    assert _request_months("req-quick") == (month,)


def test_a_fold_that_finds_the_mark_held_by_another_writes_nothing():
    row = AuditLog.objects.create(action="LEAD_UPDATED", description="x", request_id="req-held")
    seal_until_horizon(row.pk)
    AuditPresenceState.objects.create(pk=1)
    with transaction.atomic(using="audit"):
        # Another fold holds the mark's row.
        AuditPresenceState.objects.using("audit").select_for_update().get(pk=1)
        run = presence.fold_batch()
        assert (run.rows, run.more) == (0, False)
        assert AuditPresenceState.objects.get().folded_to_id == 0
        assert not AuditKeyMonth.objects.exists()
        assert not AuditKindMonth.objects.exists()
    # Once the other has let go, the next fold takes the row.
    assert presence.fold_batch().rows >= 1
    assert AuditPresenceState.objects.get().folded_to_id >= row.pk
    assert _request_months("req-held") != ()
