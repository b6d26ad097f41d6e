"""The `auditChain` health check: the latest verification of the audit hash chain (audit.chain).

A broken chain is unhealthy: someone changed, removed or slipped in audit rows, which the uptime
monitor must page about. No verification yet (a fresh install: beat's first walk comes within
AUDIT_VERIFY_SECONDS) is healthy with a message saying so; one older than
AUDIT_VERIFY_STALE_SECONDS while beat is expected to run is degraded, since nothing watches the
chain then (the heartbeat check says why). The check reads one small table, never the chain.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.chain import latest_verification, witness
from monitoring.checks import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    CheckResult,
    _bounded_cursor,  # the one statement timeout and budget of every database check
    db_alias,
)


def check_audit_chain() -> CheckResult:
    alias = db_alias()
    with _bounded_cursor(alias, settings.HEALTH_QUERY_TIMEOUT_MS):
        latest = latest_verification(using=alias)
    if latest is None:
        return CheckResult(HEALTHY, {"message": "Not verified yet", "lastVerified": None})
    age = (timezone.now() - latest.verified_at).total_seconds()
    fields: dict[str, Any] = {
        "lastVerified": latest.verified_at.isoformat(),
        "verifiedBy": latest.runner,
        "result": "intact" if latest.intact else "broken",
        "checked": latest.checked,
        "head": witness(latest.head_seq, latest.head_hash),
    }
    if not latest.intact:
        fields.update(
            message=f"Audit chain broken: {latest.problem}",
            firstBrokenRow=latest.first_broken_id,
        )
        return CheckResult(UNHEALTHY, fields, age)
    if settings.HEALTH_EXPECT_HEARTBEAT and age > settings.AUDIT_VERIFY_STALE_SECONDS:
        fields["message"] = f"Latest verification is {age:.0f} s old"
        return CheckResult(DEGRADED, fields, age)
    return CheckResult(HEALTHY, {"message": "Audit chain intact", **fields}, age)
