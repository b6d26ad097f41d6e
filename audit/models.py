from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone


class Severity(models.TextChoices):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class Action(models.TextChoices):
    # The labels are what people read (the activity dashboard); the values are what is stored.
    LOGIN = "LOGIN", "Logged in"
    LOGOUT = "LOGOUT", "Logged out"
    LOGIN_FAILED = "LOGIN_FAILED", "Login failed"
    LEAD_CREATED = "LEAD_CREATED", "Lead created"
    LEAD_UPDATED = "LEAD_UPDATED", "Lead updated"
    LEAD_DELETED = "LEAD_DELETED", "Lead deleted"
    LEAD_CONVERTED = "LEAD_CONVERTED", "Lead converted"
    INVOICE_GENERATED = "INVOICE_GENERATED", "Invoice created"
    INVOICE_SENT = "INVOICE_SENT", "Invoice sent"
    INVOICE_UPDATED = "INVOICE_UPDATED", "Invoice updated"
    INVOICE_CANCELLED = "INVOICE_CANCELLED", "Invoice cancelled"
    PAYMENT_RECEIVED = "PAYMENT_RECEIVED", "Payment received"
    STUDENT_CREATED = "STUDENT_CREATED", "Student created"
    STUDENT_UPDATED = "STUDENT_UPDATED", "Student updated"
    LEAD_TO_STUDENT_CONVERSION = "LEAD_TO_STUDENT_CONVERSION", "Lead converted to student"
    SYSTEM_ERROR = "SYSTEM_ERROR", "System error"
    DATABASE_ERROR = "DATABASE_ERROR", "Database error"
    API_ERROR = "API_ERROR", "API error"
    EMAIL_SENT = "EMAIL_SENT", "E-mail sent"
    EMAIL_FAILED = "EMAIL_FAILED", "E-mail failed"
    USER_CREATED = "USER_CREATED", "User created"
    USER_UPDATED = "USER_UPDATED", "User updated"
    USER_DEACTIVATED = "USER_DEACTIVATED", "User deactivated"
    USER_REACTIVATED = "USER_REACTIVATED", "User reactivated"
    USER_PASSWORD_RESET = "USER_PASSWORD_RESET", "Password reset"
    USER_PASSWORD_CHANGED = "USER_PASSWORD_CHANGED", "Password changed"
    API_TOKEN_ISSUED = "API_TOKEN_ISSUED", "API token issued"
    API_TOKEN_REVOKED = "API_TOKEN_REVOKED", "API token revoked"
    LOCKOUT_CLEARED = "LOCKOUT_CLEARED", "Login lockout lifted"
    # Stored rows rewritten by a data migration (one summary row per migration).
    DATA_MIGRATED = "DATA_MIGRATED", "Data migrated"
    ALERT_ACKNOWLEDGED = "ALERT_ACKNOWLEDGED", "Alert acknowledged"
    ALERT_SILENCED = "ALERT_SILENCED", "Alert silenced"
    ALERT_SILENCE_ENDED = "ALERT_SILENCE_ENDED", "Alert silence ended"
    ALERTS_MUTED = "ALERTS_MUTED", "Alerts muted"
    ALERTS_UNMUTED = "ALERTS_UNMUTED", "Alerts unmuted"
    # The hash chain (audit.chain): a witnessed head, and a verification that found it broken.
    AUDIT_CHECKPOINT = "AUDIT_CHECKPOINT", "Audit checkpoint"
    AUDIT_CHAIN_BROKEN = "AUDIT_CHAIN_BROKEN", "Audit chain broken"
    # The result of comparing the money rows with the trail (monitoring.reconciliation).
    RECONCILIATION = "RECONCILIATION", "Money reconciled"
    # A step in the life of an archive of old audit rows (audit.archive): archived, verified,
    # detached, dropped, restored, or found not to match its manifest (metadata `step`).
    AUDIT_ARCHIVED = "AUDIT_ARCHIVED", "Audit rows archived"
    # A read of personal data (audit.access): at most one row per user, entity and hour.
    DATA_ACCESSED = "DATA_ACCESSED", "Personal data viewed"
    # Batches are edited in the Django admin (payments.batches).
    BATCH_CREATED = "BATCH_CREATED", "Batch created"
    BATCH_UPDATED = "BATCH_UPDATED", "Batch updated"
    BATCH_DELETED = "BATCH_DELETED", "Batch deleted"


class Source(models.TextChoices):
    REQUEST = "REQUEST"
    TASK = "TASK"
    COMMAND = "COMMAND"
    SYSTEM = "SYSTEM"


class AuditLog(models.Model):
    """One thing that happened: who, what, when, from where, to which entity, with which outcome.

    Append-only: the database refuses UPDATE and DELETE (see migration 0002). The user is stored
    as a snapshot (id, e-mail, name, role at that moment) rather than a foreign key, so rows stay
    true after a user is renamed or removed and can be written from a separate connection.
    """

    action = models.CharField(max_length=64)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    description = models.TextField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.SYSTEM)

    user_id = models.BigIntegerField(null=True, blank=True)
    user_email = models.CharField(max_length=254, blank=True)
    user_name = models.CharField(max_length=150, blank=True)
    user_role = models.CharField(max_length=16, blank=True)

    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_path = models.CharField(max_length=512, blank=True)
    request_method = models.CharField(max_length=8, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    entity_type = models.CharField(max_length=64, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    error_message = models.TextField(blank=True)
    error_stack = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    # Drawn for every row written by audit_record_independent, so that a copy of it kept in the
    # spool while the database was away (audit.spool) is inserted exactly once: the unique index
    # refuses the copy if the first attempt did commit after all.
    spool_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        # On PostgreSQL the table is partitioned by month and class (audit.partitions), and
        # every unique index there holds the partition keys: the primary key is (id, created_at,
        # action) and this one (spool_id, created_at, action). Django keeps `id` as the pk; ids
        # come from one sequence, and a spooled copy carries its row's created_at and action.
        constraints = [
            models.UniqueConstraint(
                fields=["spool_id"],
                condition=models.Q(spool_id__isnull=False),
                name="audit_spool_id_uniq",
            ),
        ]
        indexes = [
            # The feed and its `after` cursor walk the primary key; these serve the filters.
            # Time windows (24 h stats, last-hour error rate) read only these three columns: with
            # them in the index PostgreSQL answers from the index alone (index-only scan).
            models.Index(
                fields=["created_at"],
                include=["severity", "action"],
                name="audit_created_cover_idx",
            ),
            # The errors view: a few percent of the rows, walked newest first by id.
            models.Index(
                fields=["id"],
                condition=models.Q(severity__in=["ERROR", "CRITICAL"]),
                name="audit_errors_id_idx",
            ),
            # An action filter on the feed, even for a rare action, without scanning by id.
            models.Index(fields=["action", "-id"], name="audit_action_id_idx"),
            # Every index is paid for on each audit write inside a money transaction, so time
            # filters by severity or action use the covering index above instead of their own.
            models.Index(fields=["entity_type", "entity_id", "-id"], name="audit_entity_idx"),
            models.Index(fields=["user_id", "-id"], name="audit_user_idx"),
            models.Index(fields=["request_id"], name="audit_request_idx"),
            # Errors of one entity type, newest first: without it the errors index is walked
            # past every other type's errors (all of them when the type has few), a read that
            # grows with the table. Partial, so only ERROR/CRITICAL rows pay for it on write.
            models.Index(
                fields=["entity_type", "-id"],
                condition=models.Q(severity__in=["ERROR", "CRITICAL"]),
                name="audit_errors_entity_idx",
            ),
            # The admin's search by e-mail (case-insensitive, as Django's iexact writes it).
            models.Index(Upper("user_email"), models.F("id").desc(), name="audit_user_email_idx"),
            # Free text over descriptions (the audit-log API's `q`, the admin's search) has a
            # trigram GIN index on UPPER(description); PostgreSQL only, so it is made in
            # migration 0010 rather than declared here.
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.severity} {self.action}"


class AuditSeal(models.Model):
    """One link of the hash chain over the audit rows, in the order the sealer saw them commit.

    Append-only like the trail itself (trigger in migration 0006, INSERT and SELECT only for the
    application role). `seq` is gapless because the sealer computes it under its lock instead of
    drawing it from a sequence; `hash` covers the previous hash, `seq`, `sealed_at` and the
    row's canonical content (audit.chain).
    """

    seq = models.BigIntegerField(primary_key=True)
    # Not a foreign key: the trail will be partitioned by month, and a seal must outlive the row
    # it names so that the row's removal is reported instead of refused.
    audit_id = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64, db_index=True)
    prev_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()
    # Which list of columns the canonical content has (audit.chain.CANONICAL_COLUMNS).
    format = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"seal {self.seq} of audit row {self.audit_id}"


class ChainState(models.Model):
    """The sealer's bookmark (one row): below `horizon_id` every committed row is sealed.

    Business data, not evidence: a wrong value here can only make the sealer look at more rows or
    leave some unsealed, which `audit_verify` reports.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    horizon_id = models.BigIntegerField(default=0)
    # The highest id seen at one run, and the first transaction id that had not started one run
    # later: once no transaction older than that is running, no row up to mark_id can still
    # commit (audit.chain.seal_pending).
    mark_id = models.BigIntegerField(null=True)
    mark_xid = models.BigIntegerField(null=True)
    sealed_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"sealed below {self.horizon_id}"


class ChainVerification(models.Model):
    """The latest verification of the chain by each runner (beat, the command), for health."""

    runner = models.CharField(max_length=16, unique=True)
    verified_at = models.DateTimeField()
    intact = models.BooleanField()
    checked = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    first_broken_id = models.BigIntegerField(null=True)
    problem = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        outcome = "intact" if self.intact else "BROKEN"
        return f"{self.runner} {self.verified_at:%Y-%m-%d %H:%M} {outcome}"


class AuditMinuteCount(models.Model):
    """Audit rows of one UTC minute, action and severity whose id is at most
    `AuditRollupState.folded_to_id` (audit.rollup): the 24 h stats, the hourly chart, the error
    rate and the activity counts read these (and AuditHourCount) instead of every row of their
    window.

    Business data derived from the trail, not evidence: the fold job writes it, and a reader adds
    the rows above the fold mark, counted live, so a lagging fold makes reads slower, never wrong.
    """

    minute = models.DateTimeField()
    action = models.CharField(max_length=64)
    severity = models.CharField(max_length=8)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "action", "severity"], name="audit_minutecount_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.severity} {self.action}: {self.count}"


class AuditHourCount(models.Model):
    """The same counts per hour of the local time zone (`AuditRollupState.hour_zone`): `hour` is
    the instant that hour starts. A day's stats read 24 of these per action and severity rather
    than 1,440 minutes; the minutes serve the partial hours at a window's edges."""

    hour = models.DateTimeField()
    action = models.CharField(max_length=64)
    severity = models.CharField(max_length=8)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "action", "severity"], name="audit_hourcount_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M} {self.severity} {self.action}: {self.count}"


class AuditRollupState(models.Model):
    """The fold job's mark (one row): every audit row with an id up to `folded_to_id` is counted
    in AuditMinuteCount and AuditHourCount (its minute or hour starting at or after
    `complete_from`, when that is set: older ones are pruned and read from the trail itself)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # One more at every fold that changed anything: a read compares it before and with its
    # counts to know that no fold committed in between (audit.rollup.window_counts).
    version = models.BigIntegerField(default=0)
    folded_to_id = models.BigIntegerField(default=0)
    complete_from = models.DateTimeField(null=True, blank=True)
    folded_at = models.DateTimeField(null=True, blank=True)
    # The time zone whose hours AuditHourCount holds (TIME_ZONE when they were counted); blank
    # before the first fold. A fold under another TIME_ZONE counts the hours again.
    hour_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit rolled up to id {self.folded_to_id}"


class AuditArchive(models.Model):
    """One archive unit: the rows of one retention class and one UTC month, in storage.

    Written by audit.archive when the files and their manifest are in the archive storage, then
    updated as the unit goes through retention (verified, its partition detached, dropped). The
    chain verifier reads it: rows of a detached unit are not "missing" when the set of seals that
    name missing rows is exactly the set this record vouches for (`row_count`, `seal_sum`). Every
    change of it is also an AUDIT_ARCHIVED row in the trail, whose hash chain seals its values.
    """

    key = models.CharField(max_length=255, unique=True)
    retention_class = models.CharField(max_length=16)
    month = models.DateField()
    # The table the rows were read from: the audit table, or a detached partition.
    source_table = models.CharField(max_length=63)
    row_count = models.BigIntegerField()
    first_id = models.BigIntegerField(null=True)
    last_id = models.BigIntegerField(null=True)
    manifest_sha256 = models.CharField(max_length=64)
    jsonl_sha256 = models.CharField(max_length=64)
    csv_sha256 = models.CharField(max_length=64)
    # sha256 over "id:seq:hash" lines of the rows' seals in id order, and the sum modulo 2**256
    # of each line's sha256 (order-free, so the chain verifier can add up the seals it finds
    # without sorting them).
    seal_digest = models.CharField(max_length=64)
    seal_sum = models.CharField(max_length=64)
    first_seal_seq = models.BigIntegerField(null=True)
    last_seal_seq = models.BigIntegerField(null=True)
    archived_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True)
    detached_at = models.DateTimeField(null=True)
    detached_table = models.CharField(max_length=63, blank=True)
    dropped_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["month", "retention_class"]
        constraints = [
            models.UniqueConstraint(fields=["retention_class", "month"], name="audit_archive_unit"),
        ]

    def __str__(self) -> str:
        return self.key


class AuditLateRow(models.Model):
    """An audit row whose created_at was far from the moment it was inserted.

    Written only by a trigger of the partitioned trail (migration 0012, audit.timeline explains
    why): a spooled row replayed hours later, a writer whose clock was off, a backfill. Every
    other row's created_at is within audit.timeline.SLACK of its insert, which is what lets the
    feed read only the months that can hold its page. SQLite keeps the table empty.
    """

    id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_late_row"

    def __str__(self) -> str:
        return f"{self.id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class AuditPresenceState(models.Model):
    """The presence fold's mark (one row): every audit row with an id up to `folded_to_id` is
    in AuditKindMonth and AuditKeyMonth (audit.presence)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    folded_to_id = models.BigIntegerField(default=0)
    folded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"audit presence folded to id {self.folded_to_id}"


class AuditKindMonth(models.Model):
    """A UTC month that holds at least one audit row of this action, severity and entity type.

    Derived from the trail by the presence fold (audit.presence), never written by a request: a
    filtered read of the feed learns from these rows which months can hold its matches, so a
    filter that matches nothing reads no month at all. A set: a row is added once, and a month
    left here after its partition is gone only costs a read that finds nothing.
    """

    pk = models.CompositePrimaryKey("action", "severity", "entity_type", "month")
    action = models.CharField(max_length=64)
    severity = models.CharField(max_length=8)
    entity_type = models.CharField(max_length=64, blank=True)
    month = models.DateField()

    class Meta:
        db_table = "audit_kind_month"

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.severity} {self.action} {self.entity_type}"


class AuditKeyMonth(models.Model):
    """A UTC month that holds at least one audit row of a user e-mail address, a request id,
    three characters in a row of a description, a user id or an entity, as 64 bits of the
    value's MD5 (audit.presence): filters and searches by these read only those months. A hash,
    so the table holds no address; two values that share one only make a search read a month
    that holds neither, never miss one.
    """

    class Kind(models.IntegerChoices):
        USER_EMAIL = 1, "user e-mail (upper case)"
        REQUEST_ID = 2, "request id"
        TEXT = 3, "three characters of a description (upper case)"
        USER_ID = 4, "user id"
        ENTITY = 5, "entity (type#id)"

    pk = models.CompositePrimaryKey("kind", "key", "month")
    kind = models.PositiveSmallIntegerField(choices=Kind.choices)
    key = models.BigIntegerField()
    month = models.DateField()

    class Meta:
        db_table = "audit_key_month"

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.get_kind_display()} {self.key:x}"
