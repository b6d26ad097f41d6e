"""The test database as production runs it (README, "Database roles"): created and migrated by
the owner of the tables, used by every test through the application role `db_roles` sets up.

PostgreSQL only; on SQLite nothing here runs. When DATABASE_URL names a superuser (CI, and the
README's test command), the suite makes both roles itself: an owner (LOGIN, CREATEDB, CREATEROLE,
not a superuser) and the application role, named after the test database unless TEST_DB_OWNER
and TEST_DB_APP_ROLE say otherwise, each with a new random password per run. When it names any
other role, that role is the owner (it needs CREATEDB, and CREATEROLE for the application role).

The owner stays reachable through OWNER_ALIAS (owner_connection()), a connection that is not in
settings, so no test reaches it by accident, for what the application may not do: the flush that
empties the tables after a transactional test (TRUNCATE, refused on the audit table) and the DDL of
tests that inject failures.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import secrets
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django.db.backends.base.creation import TEST_DATABASE_PREFIX
from django.db.utils import ConnectionDoesNotExist, load_backend
from django.test import TransactionTestCase
from psycopg import sql

OWNER_ALIAS = "owner"
APP_ALIASES = ("default", "audit", "health")
_PASSWORD_VARIABLE = "PLANBETA_TEST_APP_PASSWORD"
_DJANGO_FIXTURE_TEARDOWN = TransactionTestCase._fixture_teardown


@dataclass
class Roles:
    owner: str
    owner_password: str
    app: str
    app_password: str
    # DATABASE_URL's connection settings when it names a superuser, for the tests that check what
    # only a superuser can read (a role's stored password).
    superuser: dict | None = None
    connected_as: str = ""  # current_user of the application's connection, read back


ROLES: Roles | None = None
_OWNER_SETTINGS: dict = {}
_OWNER_CONNECTIONS: list = []


def on_postgresql() -> bool:
    return connections["default"].vendor == "postgresql"  # ENGINE may be a subclass (ours is)


def prepare_owner() -> None:
    """Before the test database exists: every alias connects as the owner, who creates it."""
    global ROLES
    if not on_postgresql():
        return
    given = settings.DATABASES["default"]
    test_name = given.get("TEST", {}).get("NAME") or TEST_DATABASE_PREFIX + given["NAME"]
    with _connect(given, dbname="postgres") as conn:
        (is_superuser,) = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if is_superuser:
            owner = os.environ.get("TEST_DB_OWNER") or _role_name(test_name, "owner")
            owner_password = secrets.token_urlsafe(24)
            _ensure_owner(conn, owner, owner_password)
            # A test database left by a run as another role (the superuser, before these
            # roles) cannot be dropped and created again by the owner.
            row = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [test_name]
            ).fetchone()
            if row and row[0] != owner:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(test_name)))
        else:
            owner, owner_password = given["USER"], given.get("PASSWORD") or ""
    app = os.environ.get("TEST_DB_APP_ROLE") or _role_name(test_name, "app")
    superuser = {k: given.get(k) for k in ("HOST", "PORT", "USER", "PASSWORD")}
    ROLES = Roles(
        owner, owner_password, app, secrets.token_urlsafe(24), superuser if is_superuser else None
    )
    _connect_aliases_as(owner, owner_password)


def serve_as_app_role() -> None:
    """After `migrate` by the owner: db_roles, then every alias connects as the application."""
    if ROLES is None:
        return
    os.environ[_PASSWORD_VARIABLE] = ROLES.app_password
    try:
        call_command(
            "db_roles",
            "--app-role",
            ROLES.app,
            "--password-env",
            _PASSWORD_VARIABLE,
            stdout=io.StringIO(),
        )
    finally:
        del os.environ[_PASSWORD_VARIABLE]
    _OWNER_SETTINGS.update(copy.deepcopy(settings.DATABASES["default"]))
    _connect_aliases_as(ROLES.app, ROLES.app_password)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_user")
        ROLES.connected_as = cursor.fetchone()[0]
    TransactionTestCase._fixture_teardown = _flush_through_the_owner


def back_to_owner() -> None:
    """At the end, so that the owner drops the test database it created."""
    if ROLES is None:
        return
    TransactionTestCase._fixture_teardown = _DJANGO_FIXTURE_TEARDOWN
    while _OWNER_CONNECTIONS:
        owner = _OWNER_CONNECTIONS.pop()
        owner.inc_thread_sharing()  # closed from here whichever thread opened it
        owner.close()
    _connect_aliases_as(ROLES.owner, ROLES.owner_password)


def owner_connection():
    """The owner's connection to the test database; on SQLite, the one connection there is."""
    if ROLES is None:
        return connections["default"]
    try:
        return connections[OWNER_ALIAS]
    except ConnectionDoesNotExist:
        # Django keeps connections in context variables, and code may run in a context of its
        # own (Playwright's greenlets do): the alias is registered in each context that asks.
        owner = load_backend(_OWNER_SETTINGS["ENGINE"]).DatabaseWrapper(
            copy.deepcopy(_OWNER_SETTINGS), OWNER_ALIAS
        )
        connections[OWNER_ALIAS] = owner
        _OWNER_CONNECTIONS.append(owner)
        return owner


@contextlib.contextmanager
def inserts_refused(table: str, message: str):
    """Every INSERT into `table` fails with a real database error (a trigger that raises
    `message`) until the block ends, or until the `lift()` it yields is called. Installed by the
    owner, since the application role may not create triggers: use it in transactional tests."""
    owner = owner_connection()
    name = f"test_refuse_{table}"

    def lift() -> None:
        with owner.cursor() as cursor:
            cursor.execute(
                f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();"
            )

    with owner.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER {name} BEFORE INSERT ON {table}
            FOR EACH ROW EXECUTE FUNCTION {name}();
            """
        )
    try:
        yield lift
    finally:
        lift()


@contextlib.contextmanager
def connected_as_owner():
    """Every alias connects as the owner for the block, as an operator's command run with the
    owner's URL does (DDL: a restore table, detaching partitions). Transactional tests only: the
    connections are closed and opened again."""
    if ROLES is None:
        yield
        return
    _connect_aliases_as(ROLES.owner, ROLES.owner_password)
    try:
        yield
    finally:
        _connect_aliases_as(ROLES.app, ROLES.app_password)


def summary() -> str:
    if ROLES is None or not ROLES.connected_as:
        return ""
    return (
        f"PostgreSQL: the tests connected as {ROLES.connected_as} (the application role, set up "
        f"by db_roles); {ROLES.owner} created and migrated the test database."
    )


def _flush_through_the_owner(self: TransactionTestCase) -> None:
    # Django flushes every alias the test used, each with TRUNCATE. default, audit and health are
    # one database, so it is emptied once, as the owner: the application role may not TRUNCATE
    # the audit trail, and it is not given the right to just for the tests.
    owner_connection()
    inhibit_post_migrate = self.available_apps is not None or (
        self.serialized_rollback and hasattr(connections["default"], "_test_serialized_contents")
    )
    # The trail's tables refuse TRUNCATE even from the owner (audit.partitions): their triggers
    # are switched off for this one transaction and back on (ALWAYS) before it commits.
    with transaction.atomic(using=OWNER_ALIAS), connections[OWNER_ALIAS].cursor() as cursor:
        cursor.execute(truncate_guards("DISABLE"))
        call_command(
            "flush",
            verbosity=0,
            interactive=False,
            database=OWNER_ALIAS,
            reset_sequences=False,
            allow_cascade=self.available_apps is not None,
            inhibit_post_migrate=inhibit_post_migrate,
        )
        cursor.execute(truncate_guards("ENABLE ALWAYS"))


_TRUNCATE_GUARDS = """
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN SELECT tgrelid::regclass FROM pg_trigger WHERE tgname = 'audit_auditlog_no_truncate'
    LOOP
        EXECUTE format('ALTER TABLE %s {state} TRIGGER audit_auditlog_no_truncate', t);
    END LOOP;
END $$
"""


def truncate_guards(state: str) -> str:
    """The statement that switches the trail's TRUNCATE guards to `state` (DISABLE, ENABLE
    ALWAYS) on every table of it: the owner's way to empty it in a test, inside one transaction."""
    return _TRUNCATE_GUARDS.format(state=state)


def connect_as_superuser(dbname: str = "postgres") -> psycopg.Connection:
    assert ROLES is not None and ROLES.superuser is not None
    return _connect(ROLES.superuser, dbname=dbname)


def _connect(given: dict, *, dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        host=given.get("HOST") or None,
        port=given.get("PORT") or None,
        user=given.get("USER") or None,
        password=given.get("PASSWORD") or None,
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
    )


def _ensure_owner(conn: psycopg.Connection, owner: str, password: str) -> None:
    name = sql.Identifier(owner)
    # Made by an earlier run, or at the same instant by another one.
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
    conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER CREATEDB CREATEROLE PASSWORD {}").format(
            name, sql.Literal(password)
        )
    )


def _connect_aliases_as(user: str, password: str) -> None:
    for alias in APP_ALIASES:
        # The connections hold these very dicts (Django's handler fills settings.DATABASES in).
        settings.DATABASES[alias]["USER"] = user
        settings.DATABASES[alias]["PASSWORD"] = password
        connections[alias].close()


def _role_name(test_database: str, suffix: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", test_database.lower())[: 62 - len(suffix)]
    return f"{base}_{suffix}"


def migrate_as_owner(targets):
    """Migrate the test database to `targets` as the owner, who runs migrations (data
    migrations' own queries may go through the default connection, the application role);
    return the models as of those targets."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(owner_connection())
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(owner_connection())
    executor.migrate(executor.loader.graph.leaf_nodes())
