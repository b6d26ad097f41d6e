"""The one way rows get into the audit trail.

Every row is described by one `AuditEntry`; two kinds of write, chosen explicitly by the caller:

* `audit_record` (and `audit_record_many` for several rows at once) writes on the caller's
  connection, inside whatever transaction is open, so a business change and its audit rows commit
  together or not at all. If it fails, the business change fails with it: no audit, no commit.
* `audit_record_independent` is for rows that must exist whatever happens to the caller's
  transaction: the report of a failed operation, a login, an error. It commits on its own and
  never raises; if it cannot write, the failure goes to the log and to Sentry, and when the
  database is the reason (down, stalled) the row waits in the spool (audit.spool) and is written
  once the database answers again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import sentry_sdk
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.module_loading import import_string

from audit import spool
from audit.context import current_context
from audit.models import AuditLog, Severity
from audit.redaction import redact, redact_text
from core.database import database_unavailable
from core.error_text import safe_error_text, safe_traceback
from core.rows import cursor as prepared_cursor

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

logger = logging.getLogger(__name__)

# Set on an exception once a failure row has been written for it, so that outer layers (the API
# exception handler) do not report the same failure a second time.
_AUDITED_ATTR = "_planbeta_audited"
INDEPENDENT_ALIAS = "audit"
_SERIOUS = (Severity.ERROR, Severity.CRITICAL)


@dataclass(frozen=True)
class AuditEntry:
    """What one audit row says; the writers add who, from where and in which request.

    `entity` (a model instance) names the row's entity unless `entity_type` / `entity_id` are
    given. `actor` is the user acting; without one, the request's (or none, for tasks).
    Failure reports pass `error` and say ERROR or CRITICAL: the default is INFO.
    """

    action: str
    _: KW_ONLY
    description: str
    severity: str = Severity.INFO
    entity: models.Model | None = None
    entity_type: str = ""
    entity_id: int | str | None = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # AnonymousUser: request.user as views hand it on; a row whose actor has no pk names no user.
    actor: AbstractBaseUser | AnonymousUser | None = None
    error: BaseException | None = None


def audit_record(entry: AuditEntry) -> AuditLog:
    """Write an audit row in the caller's transaction and return it."""
    row = _build(entry)
    _insert_rows([row], using=DEFAULT_DB_ALIAS)
    _after_commit_if_serious(row, entry)
    return row


def audit_record_many(entries: Sequence[AuditEntry]) -> list[AuditLog]:
    """Write the rows of one business change in the caller's transaction, as one INSERT.

    For operations that write several rows at once (a conversion writes four), one statement
    costs a fraction of one per row.
    """
    rows = [_build(entry) for entry in entries]
    _insert_rows(rows, using=DEFAULT_DB_ALIAS)
    for row, entry in zip(rows, entries, strict=True):
        _after_commit_if_serious(row, entry)
    return rows


@dataclass(frozen=True)
class _InsertPlan:
    """What every INSERT of audit rows needs, worked out once per process and database vendor."""

    attnames: tuple[str, ...]
    # Per column, the conversion Model.save would apply to the attribute (get_db_prep_save).
    preps: tuple[Callable[[Any, Any], Any], ...]
    head: str
    one_row: str
    returning: str


_PLANS: dict[str, _InsertPlan] = {}


def _as_text(value: Any, connection: Any) -> Any:
    # What CharField and TextField do to a value (to_python), without the four calls it takes
    # them: _build puts a str (or an enum member, a str too) in every text column.
    return value if value is None or isinstance(value, str) else str(value)


def _plan(conn: BaseDatabaseWrapper) -> _InsertPlan:
    plan = _PLANS.get(conn.vendor)
    if plan is not None:
        return plan
    # Every column but the id, created_at included: the trail may be partitioned on it, and a
    # row must name the value it is routed by rather than leave it to a database default.
    fields = [f for f in AuditLog._meta.concrete_fields if not f.primary_key]
    qn = conn.ops.quote_name
    # A concrete field always has its column; the stubs allow None for the others.
    table, pk = qn(AuditLog._meta.db_table), qn(cast(str, AuditLog._meta.pk.column))
    columns = ", ".join(qn(cast(str, f.column)) for f in fields)
    text = (models.CharField, models.TextField)
    plan = _PLANS[conn.vendor] = _InsertPlan(
        attnames=tuple(f.attname for f in fields),
        preps=tuple(_as_text if isinstance(f, text) else f.get_db_prep_save for f in fields),
        # Identifiers come from the model, values are parameters.
        head=f"INSERT INTO {table} ({columns}) VALUES ",  # noqa: S608
        one_row="(" + ", ".join(["%s"] * len(fields)) + ")",
        returning=f" RETURNING {pk}",
    )
    return plan


def _insert_rows(rows: list[AuditLog], *, using: str) -> None:
    """INSERT the rows with one plain VALUES list and give them their ids.

    Not Model.save: its machinery (the field-by-field compiler, signals, the update-or-insert
    decision) costs more than the round trip itself, for a row that is only ever inserted
    (bench/audit_peers.py). Not bulk_create: on PostgreSQL it sends several rows as UNNEST
    arrays, whose client-side encoding costs more than the planning it saves for the handful of
    rows one business change writes (a third of a conversion's audit cost when it was measured
    side by side, with the pay-and-convert benchmark of that time). The statement still goes
    through Django's cursor, so the call deadline, the error translation, query logging and
    the test suite's query counts see it like any other.
    """
    conn = connections[using]
    plan = _plan(conn)
    sql = plan.head + ", ".join([plan.one_row] * len(rows)) + plan.returning
    params = [
        prep(row.__dict__[attname], conn)
        for row in rows
        for attname, prep in zip(plan.attnames, plan.preps, strict=True)
    ]
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql, params)
        ids = [pk for (pk,) in cursor.fetchall()]
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = using


def audit_record_independent(entry: AuditEntry) -> AuditLog | None:
    """Write an audit row that survives the rollback of any transaction the caller holds.

    Returns the row, or None when it could not be written. Never raises. ERROR and CRITICAL rows
    are also sent to Sentry (once per exception), CRITICAL ones to the alerting hook.
    """
    row = None
    try:
        row = _build(entry)
        # Drawn before the first attempt: if that attempt's COMMIT reached the server but its
        # reply was lost, the spooled copy carries the same id and its replay inserts nothing.
        row.spool_id = uuid.uuid4()
        alias = INDEPENDENT_ALIAS if _caller_holds_transaction() else DEFAULT_DB_ALIAS
        with transaction.atomic(using=alias):
            row.save(using=alias, force_insert=True)
    except Exception as exc:
        spool_id = None
        if row is not None and database_unavailable(exc):
            spool_id = spool.keep(row, reason=type(exc).__name__)
        # The log line names the action and the exception type only: the row's own content may
        # carry personal data and the exception text may carry a connection string.
        logger.error(
            "audit write failed: action=%s severity=%s error=%s%s",
            entry.action,
            entry.severity,
            type(exc).__name__,
            f" spooled={spool_id}" if spool_id else "",
        )
        # Not capture_exception: a database error's text can quote the row it refused.
        sentry_sdk.capture_message(
            f"audit write failed: action={entry.action} error={type(exc).__name__}",
            level="error",
        )
        row = None
    else:
        spool.replay_if_pending(using=alias)
    # The row has committed (or could not be written): what the transactional writers do after
    # their commit happens now.
    _after_write(entry, row)
    return row


def mark_audited(exc: BaseException) -> None:
    """Note that a failure row was written for `exc`, so outer layers do not write another."""
    setattr(exc, _AUDITED_ATTR, True)


def is_audited(exc: BaseException) -> bool:
    """Whether a failure row was already written for `exc`."""
    return bool(getattr(exc, _AUDITED_ATTR, False))


def _caller_holds_transaction() -> bool:
    # The atomic block that a test case wraps around each test is not the caller's transaction;
    # Django makes the same distinction for `atomic(durable=True)`.
    blocks = connections[DEFAULT_DB_ALIAS].atomic_blocks
    return any(not getattr(block, "_from_testcase", False) for block in blocks)


def _report_to_sentry(error: BaseException, *, action: str, severity: str) -> None:
    ctx = current_context()
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("audit_action", action)
        scope.set_tag("request_id", ctx.request_id or None)
        scope.level = "fatal" if severity == Severity.CRITICAL else "error"
        sentry_sdk.capture_exception(error)


def _after_commit_if_serious(row: AuditLog, entry: AuditEntry) -> None:
    # Sentry and the alerting hook hear of a row only once it has committed: a CRITICAL row
    # rolled back with its business transaction never happened.
    if row.severity in _SERIOUS:
        transaction.on_commit(lambda: _after_write(entry, row), using=DEFAULT_DB_ALIAS)


def _after_write(entry: AuditEntry, row: AuditLog | None) -> None:
    """Tell Sentry and the alerting hook about a row that committed (None: it could not be written).

    An exception is reported once, however many rows describe it; a serious row without one is
    reported as a message.
    """
    serious = entry.severity in _SERIOUS
    if entry.error is not None:
        if serious and not is_audited(entry.error):
            _report_to_sentry(entry.error, action=entry.action, severity=entry.severity)
        mark_audited(entry.error)
    elif serious and row is not None:
        _report_message_to_sentry(row)
    if row is not None and row.severity == Severity.CRITICAL:
        _critical_hook(row)


def _report_message_to_sentry(row: AuditLog) -> None:
    # ERROR/CRITICAL rows without an exception (a rejected webhook, a failed e-mail) still reach
    # Sentry, once. Action, ids and entity only: a description may name a student or a lead,
    # and the row itself is one click away by its id.
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("audit_action", row.action)
        scope.set_tag("request_id", row.request_id or None)
        scope.set_extra("audit_id", row.pk)
        scope.set_extra("entity", f"{row.entity_type} {row.entity_id}".strip())
        level: Literal["fatal", "error"] = "fatal" if row.severity == Severity.CRITICAL else "error"
        sentry_sdk.capture_message(f"{row.severity} audit event: {row.action}", level=level)


def _critical_hook(row: AuditLog) -> None:
    """Tell the alerting app (AUDIT_CRITICAL_HOOK) about a committed CRITICAL row; never raises."""
    hook_path = getattr(settings, "AUDIT_CRITICAL_HOOK", "")
    if not hook_path:
        return
    try:
        import_string(hook_path)(row)
    except Exception as exc:
        # Alerting has a periodic sweep of CRITICAL rows as its safety net; the caller's request
        # must not fail because an alert could not be queued.
        logger.error("critical-event hook failed: %s", type(exc).__name__)
        sentry_sdk.capture_exception(exc)


def _build(entry: AuditEntry) -> AuditLog:
    ctx = current_context()
    user = entry.actor if entry.actor is not None else ctx.user
    entity_type, entity_id = entry.entity_type, entry.entity_id
    if entry.entity is not None:
        # The model's own name rather than type(): a request's user is a lazy object standing in
        # for the User, and type() names the stand-in.
        entity_type = entity_type or entry.entity._meta.object_name or ""
        entity_id = entity_id or entry.entity.pk
    row = AuditLog(
        action=entry.action,
        severity=entry.severity,
        description=entry.description[:2000],
        source=ctx.source,
        ip_address=ctx.ip_address,
        user_agent=ctx.user_agent,
        request_path=ctx.path,
        request_method=ctx.method,
        request_id=ctx.request_id,
        entity_type=entity_type,
        entity_id="" if entity_id in (None, "") else str(entity_id),
        metadata=redact(dict(entry.metadata)),
    )
    if ctx.label:
        row.metadata.setdefault("context", ctx.label)
    if user is not None and user.pk is not None:
        row.user_id = user.pk
        row.user_email = getattr(user, "email", "")
        row.user_name = getattr(user, "name", "")
        row.user_role = getattr(user, "role", "")
    error = entry.error
    if error is not None:
        # Without a database error's DETAIL/CONTEXT/HINT: they quote the row it refused.
        row.error_message = redact_text(safe_error_text(error))[:2000]
        row.error_stack = redact_text(safe_traceback(error))[-10000:]
    return row
