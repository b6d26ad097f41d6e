import logging

from celery import shared_task
from django.conf import settings

from audit import chain, partitions, spool
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent

logger = logging.getLogger(__name__)


@shared_task(name="audit.replay_spool", ignore_result=True, soft_time_limit=50, time_limit=70)
def replay_spool() -> int:
    """Run by beat: write the rows spooled while the database was away (audit.spool)."""
    return spool.replay()


# The chain (audit.chain). Sealing is skipped when another sealer holds the lock: it is sealing.
@shared_task(name="audit.seal_chain", ignore_result=True, soft_time_limit=50, time_limit=70)
def seal_chain() -> int:
    return chain.seal_pending(wait=False, budget_seconds=30)


@shared_task(name="audit.checkpoint_chain", ignore_result=True, soft_time_limit=50, time_limit=70)
def checkpoint_chain() -> None:
    chain.write_checkpoint()


# A full walk reads every row: its limits are those of a long job, not of a minute task (a
# million rows take minutes, bench/audit_verify.py).
@shared_task(name="audit.verify_chain", ignore_result=True, soft_time_limit=1800, time_limit=1900)
def verify_chain() -> bool:
    result = chain.verify()
    chain.record_verification(result, runner=chain.BEAT)
    return result.intact


@shared_task(
    name="audit.ensure_partitions", ignore_result=True, soft_time_limit=300, time_limit=360
)
def ensure_partitions() -> list[str]:
    """Run by beat (daily): the trail's months up to AUDIT_PARTITION_MONTHS_AHEAD ahead.

    A failure is an ERROR row (and so Sentry and the error rate), never only a log line: a year
    of them unnoticed and rows would start landing in the DEFAULT partition. Tomorrow's run
    tries again.
    """
    try:
        created = partitions.ensure_partitions(settings.AUDIT_PARTITION_MONTHS_AHEAD)
    except Exception as exc:
        logger.error("audit partitions: ensure failed (%s)", type(exc).__name__)
        audit_record_independent(
            AuditEntry(
                Action.SYSTEM_ERROR,
                severity=Severity.ERROR,
                description=f"Creating the audit trail's monthly partitions failed"
                f" ({type(exc).__name__})",
                error=exc,
            )
        )
        return []
    if created:
        logger.info("audit partitions: created %s", ", ".join(created))
    return created
