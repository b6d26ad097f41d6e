from celery import shared_task

from audit import spool


@shared_task(name="audit.replay_spool", ignore_result=True, soft_time_limit=50, time_limit=70)
def replay_spool() -> int:
    """Run by beat: write the rows spooled while the database was away (audit.spool)."""
    return spool.replay()
