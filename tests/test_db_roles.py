"""The application role (planbeta/db_roles.py, `manage.py db_roles`): the suite runs as it, it
cannot rewrite the audit trail or its guards, and db_roles sets it up idempotently, taking back
what was granted beyond least privilege and refusing what it cannot do.

The whole suite running as that role is the proof that the app works with these grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from psycopg import sql

from audit.models import Action, AuditLog
from audit.services import AuditEntry, audit_record
from tests import database
from tests.production import PRODUCTION_ENV, manage

APPEND_ONLY = "audit_auditlog"
TRIGGER = "audit_auditlog_append_only"


@pytest.fixture
def roles(django_db_setup):
    return database.ROLES


@pytest.fixture
def superuser(roles):
    """DATABASE_URL's superuser (CI's), for what only a superuser may read or do."""
    if roles.superuser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs the suite with a superuser's DATABASE_URL.")
        pytest.skip("needs DATABASE_URL to name a superuser")
    with database.connect_as_superuser() as conn:
        yield conn


def _scram_verifies(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier (RFC 5802/7677) was made from this password."""
    iterations_salt, keys = verifier.removeprefix("SCRAM-SHA-256$").split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def _as_owner(*args, **options):
    out = io.StringIO()
    call_command("db_roles", *args, database=database.OWNER_ALIAS, stdout=out, **options)
    return out.getvalue()


def _privileges(cursor, role: str) -> dict:
    """Everything `role` holds here, as the catalog reports it to the owner who granted it."""
    cursor.execute(
        "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type)"
        " FROM information_schema.role_table_grants WHERE grantee = %s GROUP BY 1 ORDER BY 1",
        [role],
    )
    tables = dict(cursor.fetchall())
    cursor.execute(
        "SELECT object_name, privilege_type FROM information_schema.usage_privileges"
        " WHERE grantee = %s AND object_type = 'SEQUENCE' ORDER BY 1",
        [role],
    )
    sequences = cursor.fetchall()
    cursor.execute(
        "SELECT d.defaclobjtype, string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)"
        " FROM pg_default_acl d, aclexplode(d.defaclacl) a"
        " WHERE a.grantee = %s::regrole GROUP BY 1 ORDER BY 1",
        [role],
    )
    defaults = dict(cursor.fetchall())
    cursor.execute(
        "SELECT rolcanlogin, rolsuper, rolinherit, rolcreatedb, rolcreaterole, rolreplication,"
        " rolbypassrls FROM pg_roles WHERE rolname = %s",
        [role],
    )
    attributes = cursor.fetchone()
    cursor.execute(
        "SELECT array_agg(pg_get_userbyid(roleid) ORDER BY 1) FROM pg_auth_members"
        " WHERE member = %s::regrole",
        [role],
    )
    member_of = cursor.fetchone()[0]
    cursor.execute(
        "SELECT has_schema_privilege(%s, current_schema(), 'CREATE'),"
        " has_table_privilege(%s, 'audit_auditlog', 'UPDATE'),"
        " has_table_privilege(%s, 'audit_auditlog', 'DELETE'),"
        " has_table_privilege(%s, 'audit_auditlog', 'TRUNCATE'),"
        " has_table_privilege(%s, 'audit_auditlog', 'TRIGGER')",
        [role] * 5,
    )
    forbidden = cursor.fetchone()
    return {
        "tables": tables,
        "sequences": sequences,
        "defaults": defaults,
        "attributes": attributes,
        "member_of": member_of,
        "create, update, delete, truncate, trigger": forbidden,
    }


def _owner_privileges(role: str) -> dict:
    with database.owner_connection().cursor() as cursor:
        return _privileges(cursor, role)


# --- who the suite is -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(databases=["default", "audit", "health"])
def test_the_app_connects_as_the_application_role_which_is_no_superuser_and_owns_nothing(roles):
    seen = {}
    for alias in ("default", "audit", "health"):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT current_user, r.rolsuper, pg_has_role(current_user, c.relowner, 'MEMBER')"
                " FROM pg_roles r, pg_class c"
                " WHERE r.rolname = current_user AND c.oid = 'audit_auditlog'::regclass"
            )
            seen[alias] = cursor.fetchone()
    with database.owner_connection().cursor() as cursor:
        cursor.execute(
            "SELECT current_user, pg_get_userbyid(relowner) FROM pg_class"
            " WHERE oid = 'audit_auditlog'::regclass"
        )
        owner = cursor.fetchone()

    assert seen == dict.fromkeys(("default", "audit", "health"), (roles.app, False, False))
    assert owner == (roles.owner, roles.owner)
    assert roles.app != roles.owner


# --- what the application role cannot do ------------------------------------------------------

REFUSED = {
    "update a row": (
        "UPDATE audit_auditlog SET description = 'forged'",
        "permission denied for table audit_auditlog",
    ),
    "delete a row": ("DELETE FROM audit_auditlog", "permission denied for table audit_auditlog"),
    "truncate": ("TRUNCATE audit_auditlog", "permission denied for table audit_auditlog"),
    "disable the trigger": (
        f"ALTER TABLE audit_auditlog DISABLE TRIGGER {TRIGGER}",
        "must be owner of table audit_auditlog",
    ),
    "disable every trigger": (
        "ALTER TABLE audit_auditlog DISABLE TRIGGER ALL",
        "must be owner of table audit_auditlog",
    ),
    "drop the trigger": (
        f"DROP TRIGGER {TRIGGER} ON audit_auditlog",
        "must be owner of relation audit_auditlog",
    ),
    "add a trigger": (
        "CREATE TRIGGER forged BEFORE INSERT ON audit_auditlog"
        " FOR EACH ROW EXECUTE FUNCTION audit_auditlog_refuse_change()",
        "permission denied for table audit_auditlog",
    ),
    "switch triggers off for the session": (
        "SET session_replication_role = replica",
        'permission denied to set parameter "session_replication_role"',
    ),
    "take the table over": (
        "ALTER TABLE audit_auditlog OWNER TO CURRENT_USER",
        "must be owner of table audit_auditlog",
    ),
    "drop the table": ("DROP TABLE audit_auditlog", "must be owner of table audit_auditlog"),
    "create a table": ("CREATE TABLE forged (id bigint)", "permission denied for schema public"),
    "change a column": (
        "ALTER TABLE audit_auditlog ALTER COLUMN description DROP NOT NULL",
        "must be owner of table audit_auditlog",
    ),
}


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("attempt", sorted(REFUSED))
def test_the_application_role_cannot_touch_the_audit_trail_or_its_guards(attempt):
    statement, message = REFUSED[attempt]
    audit_record(
        AuditEntry(Action.PAYMENT_RECEIVED, description="original", metadata={"amount": "134.00"})
    )

    with (
        pytest.raises(Exception, match=message) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert refused.value.__cause__.sqlstate == "42501"  # insufficient_privilege
    row = AuditLog.objects.get()
    assert (row.description, row.metadata) == ("original", {"amount": "134.00"})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled, current_setting('session_replication_role') FROM pg_trigger"
            " WHERE tgrelid = 'audit_auditlog'::regclass AND tgname = %s",
            [TRIGGER],
        )
        assert cursor.fetchall() == [("A", "origin")]  # ENABLE ALWAYS, as migrated
        cursor.execute("SELECT to_regclass('forged')")
        assert cursor.fetchone() == (None,)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_application_role_cannot_become_the_owner(roles):
    with (
        pytest.raises(Exception, match=f'permission denied to set role "{roles.owner}"'),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f'SET ROLE "{roles.owner}"')


# --- partitions and children of the audit table -----------------------------------------------

CHILD = "audit_auditlog_test_child"


@pytest.fixture
def audit_child(owner_connection):
    """A partition of the audit table made by the owner by hand, as a later migration might
    (audit.partitions narrows the months it makes itself). Through the owner's default
    privileges it gets the business grants: only db_roles narrows them."""
    with owner_connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {CHILD} PARTITION OF audit_auditlog"
            " FOR VALUES FROM ('2090-01-01 00:00+00') TO ('2090-02-01 00:00+00')"
        )
    yield CHILD
    with owner_connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {CHILD}")


def _write_child_row():
    # Through the parent, as the app writes: it may not insert into a partition by name.
    AuditLog.objects.create(
        action="PAYMENT_RECEIVED",
        description="original",
        created_at=datetime(2090, 1, 5, tzinfo=UTC),
    )


def _child_refuses_rewrites():
    for statement in (
        "INSERT INTO audit_auditlog_test_child SELECT * FROM audit_auditlog_test_child",
        "UPDATE audit_auditlog_test_child SET description = 'forged'",
        "DELETE FROM audit_auditlog_test_child",
        "TRUNCATE audit_auditlog_test_child",
    ):
        with (
            pytest.raises(Exception, match=f"permission denied for table {CHILD}"),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute("SELECT description FROM audit_auditlog_test_child")
        assert cursor.fetchall() == [("original",)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_db_roles_narrows_every_partition_of_the_audit_table_to_select(audit_child, roles):
    assert _owner_privileges(roles.app)["tables"][CHILD] == "DELETE,INSERT,SELECT,UPDATE"

    _as_owner("--app-role", roles.app)

    assert _owner_privileges(roles.app)["tables"][CHILD] == "SELECT"
    _write_child_row()
    _child_refuses_rewrites()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migrate_by_the_owner_narrows_what_a_migration_added(audit_child, roles):
    out = io.StringIO()
    call_command("migrate", database=database.OWNER_ALIAS, stdout=out)

    assert f"Grants of the application role {roles.app} applied again" in out.getvalue()
    assert _owner_privileges(roles.app)["tables"][CHILD] == "SELECT"
    _write_child_row()
    _child_refuses_rewrites()


# --- db_roles ---------------------------------------------------------------------------------


def _expected_tables() -> dict[str, str]:
    names = set(connection.introspection.django_table_names(only_existing=True))
    expected = dict.fromkeys(names, "DELETE,INSERT,SELECT,UPDATE")
    expected[APPEND_ONLY] = "INSERT,SELECT"
    # Every partition of the trail (months, their class leaves, the DEFAULT): read only.
    expected.update(dict.fromkeys(_audit_partitions(), "SELECT"))
    expected["audit_auditseal"] = "INSERT,SELECT"
    expected["django_migrations"] = "SELECT"
    # Written by the trail's trigger as the owner (audit.timeline); the application only reads.
    expected["audit_late_row"] = "SELECT"
    return expected


def _audit_partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE tree(oid) AS (SELECT 'audit_auditlog'::regclass::oid UNION"
            " SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)"
            " SELECT oid::regclass::text FROM tree WHERE oid <> 'audit_auditlog'::regclass"
        )
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_db_roles_run_twice_leaves_exactly_least_privilege(roles):
    before = _owner_privileges(roles.app)

    first = _as_owner("--app-role", roles.app)
    after_first = _owner_privileges(roles.app)
    _as_owner("--app-role", roles.app)
    after_second = _owner_privileges(roles.app)

    assert before == after_first == after_second
    assert after_second["tables"] == _expected_tables()
    assert after_second["defaults"] == {"S": "SELECT,USAGE", "r": "DELETE,INSERT,SELECT,UPDATE"}
    # LOGIN; not SUPERUSER, INHERIT, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS.
    assert after_second["attributes"] == (True, False, False, False, False, False, False)
    assert after_second["member_of"] is None
    assert after_second["create, update, delete, truncate, trigger"] == (False,) * 5
    assert {privilege for _, privilege in after_second["sequences"]} == {"USAGE"}
    assert "audit_auditlog_id_seq" not in {name for name, _ in after_second["sequences"]}
    assert f"Application role {roles.app} updated" in first


@pytest.fixture
def owner_transaction(transactional_db, owner_connection):
    """Changes made as the owner inside this are rolled back at the end (roles included: in
    PostgreSQL, CREATE ROLE and GRANT are transactional)."""
    with transaction.atomic(using=database.OWNER_ALIAS):
        yield owner_connection
        transaction.set_rollback(True, using=database.OWNER_ALIAS)


@pytest.mark.postgres
def test_db_roles_takes_back_what_was_granted_beyond_least_privilege(owner_transaction, roles):
    least = _owner_privileges(roles.app)
    app, owner = f'"{roles.app}"', f'"{roles.owner}"'
    with owner_transaction.cursor() as cursor:
        for statement in (
            f"GRANT UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON audit_auditlog TO {app}",
            f"GRANT UPDATE (description) ON audit_auditlog TO {app}",
            f"GRANT TRUNCATE ON leads_lead TO {app}",
            f"GRANT INSERT ON django_migrations TO {app}",
            f"GRANT CREATE ON SCHEMA public TO {app}",
            f"GRANT {owner} TO {app}",
            f"ALTER ROLE {app} CREATEDB CREATEROLE INHERIT",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT TRUNCATE ON TABLES TO {app}",
        ):
            cursor.execute(statement)
    assert _owner_privileges(roles.app) != least

    _as_owner("--app-role", roles.app)

    assert _owner_privileges(roles.app) == least


@pytest.mark.postgres
def test_db_roles_creates_a_missing_role_with_least_privilege_and_never_prints_its_password(
    owner_transaction, roles, monkeypatch, capsys
):
    new = f"{roles.app}_new"[:63]
    monkeypatch.setenv("DATABASE_APP_PASSWORD", "Pw-0427-never-shown")

    out = _as_owner("--app-role", new)

    reference = _owner_privileges(roles.app)
    assert _owner_privileges(new) == reference
    assert f"Application role {new} created, password from DATABASE_APP_PASSWORD" in out
    captured = capsys.readouterr()
    assert "Pw-0427" not in out + captured.out + captured.err


@pytest.mark.postgres
def test_db_roles_refuses_a_role_that_could_still_rewrite_the_trail_and_changes_nothing(
    owner_transaction, roles
):
    with owner_transaction.cursor() as cursor:
        # A predefined role that writes every table: PostgreSQL 15 lets a CREATEROLE role grant it.
        cursor.execute(f'GRANT pg_write_all_data TO "{roles.app}"')
        cursor.execute(f'GRANT TRUNCATE ON leads_lead TO "{roles.app}"')
    before = _owner_privileges(roles.app)

    with pytest.raises(CommandError) as refused:
        _as_owner("--app-role", roles.app)

    message = str(refused.value)
    assert message.startswith(f"{roles.app} cannot be left with least privilege")
    assert "it may UPDATE audit_auditlog (as pg_write_all_data)" in message
    assert "it may DELETE audit_auditlog (as pg_write_all_data)" in message
    assert _owner_privileges(roles.app) == before  # TRUNCATE on leads_lead still there


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_db_roles_run_by_the_application_role_is_refused_and_changes_nothing(roles):
    other = f"{roles.app}_other"[:63]
    before = _owner_privileges(roles.app)

    with pytest.raises(CommandError) as refused:
        call_command("db_roles", "--app-role", other, stdout=io.StringIO())

    assert str(refused.value).startswith(
        "run db_roles as the owner of the tables (the role that runs migrations): you are "
        f"{roles.app}; the tables belong to {roles.owner}"
    )
    assert _owner_privileges(roles.app) == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [other])
        assert cursor.fetchone() == (0,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("owner", "is the role running db_roles, the owner of the tables"),
        ('x"; DROP TABLE audit_auditlog; --', "is not a role name db_roles accepts"),
        ("Planbeta_App", "is not a role name db_roles accepts"),
    ],
)
def test_db_roles_refuses_a_name_it_must_not_use_and_changes_nothing(roles, name, message):
    before = _owner_privileges(roles.app)
    role = roles.owner if name == "owner" else name

    with pytest.raises(CommandError, match=message):
        _as_owner("--app-role", role)

    assert _owner_privileges(roles.app) == before


@pytest.mark.postgres
def test_the_password_db_roles_set_is_stored_as_a_scram_verifier_of_it(roles, superuser):
    (verifier,) = superuser.execute(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [roles.app]
    ).fetchone()

    assert verifier.startswith("SCRAM-SHA-256$")
    assert _scram_verifies(verifier, roles.app_password)
    assert not _scram_verifies(verifier, roles.app_password + "x")


# --- the first start of the postgres container -------------------------------------------------

INIT_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "postgres-init.sh"


@pytest.mark.postgres
def test_the_first_start_of_postgres_creates_the_owner_no_superuser_and_its_database(
    roles, superuser
):
    bash, psql = shutil.which("bash"), shutil.which("psql")
    assert psql, "the postgres image runs the init script with psql; install postgresql-client"
    owner = f"{roles.owner}_init"[:63]
    name = f"{connection.settings_dict['NAME']}_init"[:63]
    password = "p@ss'w%rd-0427"  # characters the URL must encode and the SQL must quote
    url = f"postgres://{owner}:{quote(password, safe='')}@postgres:5432/{name}"
    given = roles.superuser
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_OWNER_URL": url,
        "POSTGRES_USER": given["USER"],
        "PGHOST": given["HOST"] or "127.0.0.1",
        "PGPORT": str(given["PORT"] or 5432),
        "PGPASSWORD": given["PASSWORD"] or "",
    }
    try:
        result = subprocess.run(
            [bash, str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        row = superuser.execute(
            "SELECT r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolpassword,"
            " pg_get_userbyid(d.datdba) FROM pg_authid r, pg_database d"
            " WHERE r.rolname = %s AND d.datname = %s",
            [owner, name],
        ).fetchone()
    finally:
        superuser.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        superuser.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))

    assert row[:4] == (True, False, False, True)  # LOGIN CREATEROLE, no superuser, no CREATEDB
    assert _scram_verifies(row[4], password)
    assert row[5] == owner


# --- without a database -----------------------------------------------------------------------


def test_db_roles_on_sqlite_says_it_needs_postgresql(tmp_path):
    env = {**PRODUCTION_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    result = manage("db_roles", "--app-role", "planbeta_app", env=env)

    assert result.returncode == 1
    assert "CommandError: db_roles needs PostgreSQL: SQLite has no roles." in result.stderr


def test_db_roles_refuses_the_placeholder_password_before_connecting():
    # db.internal does not resolve: the refusal comes before any connection is tried.
    env = {**PRODUCTION_ENV, "DATABASE_APP_PASSWORD": "change-me-app-0427"}

    result = manage("db_roles", "--app-role", "planbeta_app", env=env)

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "DATABASE_APP_PASSWORD still holds a placeholder from .env.example" in output
    assert "change-me-app-0427" not in output
