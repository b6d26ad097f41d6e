from celery import shared_task

from monitoring.checks import record_heartbeat
from monitoring.reconciliation import reconcile_and_record
from monitoring.services import run_scheduled_checks


@shared_task(name="monitoring.heartbeat", ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat() -> None:
    """Run by beat every minute on a worker; the health check reports its age."""
    record_heartbeat()


@shared_task(name="monitoring.reconcile", ignore_result=True, soft_time_limit=300, time_limit=360)
def reconcile() -> int:
    """Run by beat: compare money rows with the audit trail and record the result."""
    return len(reconcile_and_record().mismatches)


# The checks take at most a few seconds (their own budgets) and the ping DEADMAN_PING_TIMEOUT.
@shared_task(name="monitoring.check_run", ignore_result=True, soft_time_limit=30, time_limit=40)
def check_run() -> None:
    """Run by beat every HEALTH_CHECK_RUN_SECONDS on a worker: the checks, their recorded states
    and the dead man's switch. A ping proves that beat, the broker and a worker all run."""
    run_scheduled_checks()
