"""The health report as monitors read it: the `X-Health-Status` header and the IETF health check
response format (draft-inadarei-api-health-check, `application/health+json`).

In that format the status is `pass`, `warn` or `fail`, and `checks` maps "component:measurement"
to a list of measurements, one per instance of the component (one per table for the row counts),
each with `observedValue` and `observedUnit` where the check measures a number, the `time` it was
measured, and `output` (the check's message) unless it passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from monitoring.checks import DEGRADED, HEALTHY, MONEY, UNHEALTHY, CheckResult, HealthReport

HEALTH_JSON = "application/health+json"
STATUS_HEADER = "X-Health-Status"

IETF_STATUS = {HEALTHY: "pass", DEGRADED: "warn", UNHEALTHY: "fail"}

DESCRIPTIONS = {
    "site": "Plan Beta back office",
    MONEY: "Plan Beta back office: money operations (pay-and-convert, payments)",
}


@dataclass(frozen=True)
class Measurement:
    """How one of our checks is named and measured in the IETF format.

    `per_field`: the check holds one number per component (rows per table): one measurement
    each, `componentId` the field's name.
    """

    key: str
    component_type: str
    unit: str | None = None
    per_field: tuple[str, ...] = ()


MEASUREMENTS = {
    "database": Measurement("database:connection", "datastore"),
    "databasePerformance": Measurement("database:responseTime", "datastore", "ms"),
    "errorRate": Measurement("auditLog:errorRate", "component", "percent"),
    "moneyOperations": Measurement("moneyOperations:failures", "component", "failures"),
    "auditChain": Measurement("auditChain:lastVerification", "component"),
    "auditPartitions": Measurement("auditPartitions:defaultRows", "component", "rows"),
    "reconciliation": Measurement("reconciliation:lastRun", "component"),
    "systemMetrics": Measurement(
        "systemMetrics:rows", "datastore", "rows", ("students", "leads", "invoices", "payments")
    ),
    "recentActivity": Measurement(
        "recentActivity:count", "component", "per 24 hours", ("conversions", "payments")
    ),
    "redis": Measurement("redis:responseTime", "datastore", "ms"),
    "celery": Measurement("celery:heartbeatAge", "component", "s"),
    "alerting": Measurement("alerting:channels", "component"),
}


def ietf_body(report: HealthReport, *, scope: str, detailed: bool) -> dict[str, Any]:
    """The application/health+json body of one report; the summary for callers without details."""
    body: dict[str, Any] = {
        "status": IETF_STATUS[report.status(scope)],
        "serviceId": settings.HEALTH_SERVICE_ID,
        "description": DESCRIPTIONS.get(scope, DESCRIPTIONS["site"]),
    }
    if not detailed:
        return body
    time = report.checked_at.isoformat()
    checks: dict[str, list[dict[str, Any]]] = {}
    for name, result in report.scoped(scope).items():
        # A check this module does not know yet still appears, under its own name.
        measurement = MEASUREMENTS.get(name, Measurement(name, "component"))
        checks[measurement.key] = _measured(result, measurement, time)
    failing = [name for name, r in report.scoped(scope).items() if r.status != HEALTHY]
    body["releaseId"] = settings.APP_VERSION
    if failing:
        body["output"] = "Not healthy: " + ", ".join(failing)
    body["checks"] = checks
    return body


def _measured(result: CheckResult, measurement: Measurement, time: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "componentType": measurement.component_type,
        "status": IETF_STATUS[result.status],
        "time": time,
    }
    if result.status != HEALTHY and result.fields.get("message"):
        base["output"] = result.fields["message"]
    if measurement.per_field:
        return [
            {
                "componentId": name,
                **base,
                "observedValue": result.fields[name],
                "observedUnit": measurement.unit,
            }
            for name in measurement.per_field
            if name in result.fields
        ] or [base]
    if result.value is not None:
        value = round(result.value, 2) if isinstance(result.value, float) else result.value
        base.update(observedValue=value, observedUnit=measurement.unit)
    return [base]
