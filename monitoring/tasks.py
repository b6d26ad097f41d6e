from celery import shared_task

from monitoring.checks import record_heartbeat
from monitoring.reconciliation import reconcile_and_record


@shared_task(name="monitoring.heartbeat", ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat() -> None:
    """Run by beat every minute on a worker; the health check reports its age."""
    record_heartbeat()


@shared_task(name="monitoring.reconcile", ignore_result=True, soft_time_limit=300, time_limit=360)
def reconcile() -> int:
    """Run by beat: compare money rows with the audit trail and record the result."""
    return len(reconcile_and_record().mismatches)
