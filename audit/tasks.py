import logging

from celery import shared_task
from django.conf import settings

from audit import chain, partitions, presence, rollup, spool
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


# The hour and minute counts (audit.rollup) follow the chain's horizon; a run that finds another
# fold holding the mark writes nothing. 20 s of folding at most: less than the 30 s interval.
@shared_task(name="audit.fold_rollup", ignore_result=True, soft_time_limit=50, time_limit=70)
def fold_rollup() -> int:
    return rollup.fold(budget_seconds=20).rows


# Which months hold each filter's and search term's rows (audit.presence), up to the horizon as
# well; its own task and mark, so that either fold failing does not hold up the other.
@shared_task(name="audit.fold_presence", ignore_result=True, soft_time_limit=50, time_limit=70)
def fold_presence() -> int:
    return presence.fold(budget_seconds=20).rows


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
