"""What the monitoring app reads for the status page."""

from __future__ import annotations

from django.db.models import QuerySet

from monitoring.models import CheckChange, CheckState


def check_states() -> dict[str, CheckState]:
    """Each recorded check's state and since when, by check name."""
    return {state.name: state for state in CheckState.objects.all()}


def recent_check_changes(*, limit: int = 20) -> QuerySet[CheckChange]:
    """The latest changes of any check's status, newest first."""
    return CheckChange.objects.order_by("-changed_at", "-id")[:limit]
