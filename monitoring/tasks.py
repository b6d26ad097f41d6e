from celery import shared_task

from monitoring.checks import record_heartbeat


@shared_task(name="monitoring.heartbeat", ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat() -> None:
    """Run by beat every minute on a worker; the health check reports its age."""
    record_heartbeat()
