"""Measurements for rules 3 and 5, set by the tests in place of the monitoring app's checks.

The rules look these up by the dotted paths in ALERT_*_SOURCE settings, exactly as they look up
monitoring.checks in production.
"""

from __future__ import annotations

readings: dict = {}


def db_performance(*, timeout_ms: int | None = None) -> dict:
    return {"status": "healthy", "queryTime": readings["queryTime"], "threshold": "1000ms"}


def collect_health(*, detailed: bool) -> tuple[dict, int]:
    status = readings["health"]
    body = {
        "status": status,
        "checks": {
            "database": {"status": status},
            "errorRate": {"status": "healthy"},
        },
    }
    return body, 503 if status == "unhealthy" else 200


def heartbeat_age_seconds() -> float | None:
    return readings["heartbeat"]
