"""Exactly-once money requests, keyed by the client's idempotency key: `run_exactly_once`.

The design, chosen for PostgreSQL's READ COMMITTED:

1. The request is validated first; invalid input never creates a record.
2. The key is *claimed* by inserting an IN_FLIGHT record in its own short transaction that
   commits at once. The unique index on `key` is the arbiter: a concurrent request with the same
   key blocks on the index entry until the claim commits, then gets an IntegrityError and reads
   the committed record — COMPLETED → replay its stored answer; IN_FLIGHT → 409; bound to
   another invoice or payload → 422. Because the claim is already committed, no second request
   can start the same work while the first runs, and none waits for the whole conversion.
   The claim is one INSERT outside any transaction (autocommit), so it commits in one round
   trip. It is deliberately not merged into the work's transaction: a claim that is not yet
   committed is invisible to everyone else, so (a) after a lost COMMIT reply (step 6) there would
   be no row to lock and wait on, and "not found" could not tell "rolled back" from "COMMIT still
   running"; (b) a request whose connection stalled mid-work would leave no visible claim, and
   its retry would block on the unique index for as long as the stalled transaction lives,
   instead of being told at once that the key is in flight. tests/payments/
   test_lost_commit_reply_postgres.py and tests/resilience/test_stalled_database.py hold both.
3. The work runs in a second transaction, which ends by marking the record COMPLETED with the
   status code and body, so the business rows and the stored answer commit together.
4. If the work fails for any reason, the claim is deleted (released), so a retry with the same
   key starts afresh — a failed attempt never blocks a retry.
5. A claim whose process died between steps 2 and 4 would block its key forever; after
   STALE_AFTER it may be taken over. The claim token makes the takeover safe: the completion in
   step 3 only succeeds for the token that still owns the record, else the work rolls back.
6. If the COMMIT itself fails (the connection died after it was sent), the error does not say
   whether the work committed, so the frame asks the database. It locks the record — the dying
   transaction holds that row since step 3, so the lock is granted only once it has committed or
   rolled back — and reads it: COMPLETED with our token means it committed, and the client gets
   the stored answer; anything else means it did not, and the claim is released. If the
   database cannot be asked (down, or the old transaction does not end within OUTCOME_WAIT),
   the claim is kept and the client gets 503: a retry with the same key replays the answer once
   the transaction turns out to have committed, and can never record the money twice.

Every failure writes exactly one row that survives the rollback, with the operation's context
(`MoneyRequest.context`: amounts, invoice number, lead, idempotency key) and an `outcome`:

| outcome       | severity | when                                                             |
|---------------|----------|------------------------------------------------------------------|
| `not_started` | CRITICAL | the claim itself failed (the database erred); nothing was written |
| `rolled_back` | CRITICAL | the work failed, or its COMMIT failed and it did not commit       |
| `committed`   | WARNING  | the COMMIT's reply was lost but it committed; the client got it    |
| `unknown`     | CRITICAL | the COMMIT's reply was lost and the database could not be asked    |

A refusal (ApplicationError: 4xx) writes none here; the service decides (a refused double
conversion is a WARNING).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

from accounts.actors import Actor
from audit.models import Severity
from audit.services import AuditEntry, audit_record_independent
from core import rows
from core.errors import ApplicationError, ConflictError, ServiceUnavailableError
from payments.models import IdempotencyRecord, IdempotencyState

logger = logging.getLogger(__name__)

STALE_AFTER = datetime.timedelta(minutes=2)
# How long the outcome check waits for a transaction whose COMMIT reply was lost to end. A COMMIT
# takes milliseconds; one still running after this is stuck, and the answer is "unknown".
OUTCOME_WAIT = datetime.timedelta(seconds=2)
# What a client may send as a key (API body or header, and the staff forms' hidden field).
KEY_PATTERN = r"[A-Za-z0-9._:-]{8,128}"

NOT_STARTED = "not_started"
ROLLED_BACK = "rolled_back"
COMMITTED = "committed"
UNKNOWN = "unknown"

Work = Callable[[], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Answer:
    """What a money request answers: `replayed` when it is the stored answer of an earlier
    request with the same key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class MoneyRequest:
    """One money request as the exactly-once frame sees it.

    `operation`, `invoice_id` and `payload` are what the key is bound to; `action`, `subject`
    ("Conversion of invoice PB-2026-0001") and `context` describe it in its failure rows.
    """

    operation: str
    key: str
    invoice_id: int
    payload: dict[str, Any]
    action: str
    subject: str
    context: dict[str, Any]
    actor: Actor


def run_exactly_once(request: MoneyRequest, work: Work) -> Answer:
    """Run `work` at most once for `request.key` and return its answer, or the stored one.

    `work` runs inside the transaction that completes the key and returns `(status_code, body)`.
    An ApplicationError it raises (a refusal) releases the key and propagates; any other failure
    is recorded (see the module docstring) and propagates, except a lost COMMIT reply whose
    transaction did commit: then the stored answer is returned as if nothing had happened.
    """
    fingerprint = request_hash(request.operation, request.invoice_id, request.payload)
    try:
        claim = _claim(
            key=request.key,
            operation=request.operation,
            invoice_id=request.invoice_id,
            fingerprint=fingerprint,
        )
    except ApplicationError:
        raise
    except Exception as exc:
        _report(request, NOT_STARTED, exc)
        raise
    if isinstance(claim, Answer):
        return claim

    committing = False
    try:
        with transaction.atomic():
            status_code, body = work()
            _complete(claim, status_code=status_code, body=body)
            # Whatever fails from here on fails in the COMMIT, whose outcome the error hides.
            committing = True
    except ApplicationError:
        _release(claim)
        raise
    except Exception as exc:
        if not committing:
            _report(request, ROLLED_BACK, exc)
            _release(claim)
            raise
        return _settle(request, claim, exc)
    return Answer(status_code, body)


def request_hash(operation: str, invoice_id: int, payload: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"operation": operation, "invoiceId": invoice_id, "payload": payload},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _in_flight() -> ConflictError:
    return ConflictError(
        "A request with this idempotency key is still being processed; "
        "wait a moment and retry with the same key.",
        code="request_in_flight",
    )


def _claim(
    *, key: str, operation: str, invoice_id: int, fingerprint: str
) -> IdempotencyRecord | Answer:
    """Claim `key` for this request, or answer with the stored response, 409 or 422."""
    for _ in range(3):
        token = uuid.uuid4().hex
        try:
            return _insert_claim(
                key=key,
                operation=operation,
                invoice_id=invoice_id,
                request_hash=fingerprint,
                state=IdempotencyState.IN_FLIGHT,
                claim_token=token,
            )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(key=key).first()
        if existing is None:
            continue  # released by a failed attempt in between: claim again
        if (existing.operation, existing.invoice_id, existing.request_hash) != (
            operation,
            invoice_id,
            fingerprint,
        ):
            raise ApplicationError(
                "This idempotency key was already used for a different request. "
                "Use a new key for a new payment.",
                code="idempotency_key_reused",
                status_code=422,
            )
        if existing.state == IdempotencyState.COMPLETED:
            return Answer(existing.status_code or 200, existing.response_body or {}, replayed=True)
        if existing.claimed_at < timezone.now() - STALE_AFTER:
            taken = IdempotencyRecord.objects.filter(
                pk=existing.pk, state=IdempotencyState.IN_FLIGHT, claim_token=existing.claim_token
            ).update(claim_token=token, claimed_at=timezone.now())
            if taken == 1:
                existing.claim_token = token
                return existing
        raise _in_flight()
    raise _in_flight()


def _insert_claim(**fields: Any) -> IdempotencyRecord:
    """INSERT the claim and commit it at once (step 2)."""
    record = IdempotencyRecord(**fields)
    if transaction.get_connection().get_autocommit():
        # Outside any transaction the INSERT is a transaction of its own: it commits in one round
        # trip, where atomic() would add a BEGIN and a COMMIT of their own.
        rows.insert(record)
        return record
    # Inside a caller's transaction (a test's): a savepoint, so that the unique violation of a
    # key already claimed leaves that transaction usable.
    with transaction.atomic():
        rows.insert(record)
    return record


def _complete(record: IdempotencyRecord, *, status_code: int, body: dict[str, Any]) -> None:
    """Store the answer, inside the work's transaction so both commit together."""
    done = rows.update_where(
        IdempotencyRecord,
        {
            "state": IdempotencyState.COMPLETED,
            "status_code": status_code,
            "response_body": body,
            "completed_at": timezone.now(),
        },
        {"pk": record.pk, "state": IdempotencyState.IN_FLIGHT, "claim_token": record.claim_token},
    )
    if done != 1:
        raise _in_flight()  # our stale claim was taken over: let the other request win


def _release(record: IdempotencyRecord) -> None:
    """Free the key after a failed attempt. Never raises: it runs while another error is being
    reported, and a claim it could not delete becomes free after STALE_AFTER anyway."""
    try:
        IdempotencyRecord.objects.filter(
            pk=record.pk, state=IdempotencyState.IN_FLIGHT, claim_token=record.claim_token
        ).delete()
    except DatabaseError as exc:
        logger.error("idempotency release failed: key=%s error=%s", record.key, type(exc).__name__)


def _settle(request: MoneyRequest, claim: IdempotencyRecord, exc: Exception) -> Answer:
    """The COMMIT failed: find out whether it happened, record that, answer accordingly."""
    try:
        stored = _stored_answer(claim)
    except Exception as check_exc:
        _report(request, UNKNOWN, exc, check_error=check_exc)
        raise ServiceUnavailableError(
            "The database stopped answering while this payment was being saved, and whether it "
            "was recorded is not known yet. Retry with the same idempotency key in a minute: it "
            "will show the payment if it was recorded, and can never record it twice.",
        ) from exc
    if stored is None:
        _report(request, ROLLED_BACK, exc)
        raise exc
    _report(request, COMMITTED, exc)
    return stored


def _stored_answer(claim: IdempotencyRecord) -> Answer | None:
    """The answer our transaction stored if it committed; None (and the claim released) if not.

    Raises DatabaseError when the database cannot tell within OUTCOME_WAIT.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if (
        connection.connection is not None
        and not connection.in_atomic_block
        and not connection.is_usable()
    ):
        connection.close()  # the COMMIT's connection is gone: ask on a new one
    with transaction.atomic():
        if connection.vendor == "postgresql":
            wait_ms = int(OUTCOME_WAIT.total_seconds() * 1000)
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{wait_ms}ms"])
        # The old transaction has held this row since it completed the record, so the lock
        # waits for it to end and then reads what it left.
        record = IdempotencyRecord.objects.select_for_update().filter(pk=claim.pk).first()
        if record is None or record.claim_token != claim.claim_token:
            return None  # released or taken over: our work never completed it
        if record.state == IdempotencyState.COMPLETED:
            return Answer(record.status_code or 200, record.response_body or {})
        record.delete()
        return None


_DESCRIPTIONS = {
    NOT_STARTED: "{subject} failed before anything was recorded: {error}",
    ROLLED_BACK: "{subject} failed and was rolled back: {error}",
    COMMITTED: (
        "{subject} was recorded, but its COMMIT reported {error} instead of a reply; the "
        "database shows it committed, and the client was given the stored answer"
    ),
    UNKNOWN: (
        "{subject}: outcome unknown. Its COMMIT reported {error} instead of a reply, and the "
        "database could not be asked whether it committed ({check_error}); check the invoice "
        "before recording this payment again"
    ),
}


def _report(
    request: MoneyRequest,
    outcome: str,
    error: Exception,
    *,
    check_error: Exception | None = None,
) -> None:
    metadata = {**request.context, "outcome": outcome}
    if check_error is not None:
        metadata["outcomeCheckError"] = type(check_error).__name__
    audit_record_independent(
        AuditEntry(
            request.action,
            severity=Severity.WARNING if outcome == COMMITTED else Severity.CRITICAL,
            description=_DESCRIPTIONS[outcome].format(
                subject=request.subject,
                error=type(error).__name__,
                check_error=type(check_error).__name__,
            ),
            entity_type="Invoice",
            entity_id=request.invoice_id,
            metadata=metadata,
            actor=request.actor,
            error=error,
        ),
    )
