"""Least privilege in PostgreSQL: the application role that web, worker and beat connect as.

Run by the owner of the tables (the role that runs migrations), `apply_app_role` creates or
updates the application role and leaves it exactly this:

* SELECT, INSERT, UPDATE, DELETE on the business tables; USAGE, SELECT on their sequences;
* SELECT and INSERT only on the append-only tables (APPEND_ONLY_MODELS), and SELECT only on every
  partition or inheritance child of them: PostgreSQL checks a query through the parent against
  the parent's grants, a query naming a partition against the partition's own, and the app
  writes through the parent only;
* nothing on a partition of the audit trail once it is detached (audit.partitions: the owner
  archives and drops it);
* EXECUTE on the one function that creates the trail's months ahead (audit.partitions), which
  runs as the owner: the role itself may not create tables;
* SELECT only on the migration history, so it cannot fake which migrations ran;
* USAGE on the schema and no CREATE; it owns nothing and is a member of no role that does;
* LOGIN and none of SUPERUSER, CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS; NOINHERIT.

Tables that later migrations create get the business grants through the owner's default
privileges; the `post_migrate` hook (planbeta/apps.py) then runs this again for every role those
default privileges name, so a new append-only table or partition is narrowed in the same
`migrate`. Everything runs in one transaction and ends with a check of the result through the
catalog (the role's own grants, PUBLIC's and those of any role it may SET ROLE to): on any
problem it raises RoleSetupError and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.apps import apps
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# The tables the application may only read and append to, one line each. Their partitions and
# inheritance children are found in the catalog.
APPEND_ONLY_MODELS = ("audit.AuditLog", "audit.AuditSeal")
# Read by the application, written only by the owner: django_migrations by `migrate`
# (`showmigrations`, checks read it), audit_late_row by the trail's SECURITY DEFINER trigger
# (audit.timeline: a row the app could delete there would drop out of the feed).
READ_ONLY_TABLES = ("django_migrations", "audit_late_row")

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY_PRIVILEGES = ("SELECT", "INSERT")
# On a partition or child of an append-only table: reading it is reading the parent's rows.
PARTITION_PRIVILEGES = ("SELECT",)
# The owner's SECURITY DEFINER functions the application calls.
APP_FUNCTIONS = ("audit_ensure_partitions(integer)",)  # audit.partitions.ENSURE_FUNCTION
READ_ONLY_PRIVILEGES = ("SELECT",)
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
# Never held on an append-only table, directly or through another role: TRIGGER would let a role
# add a trigger that rewrites rows on their way in; nothing in the app needs REFERENCES.
FORBIDDEN_ON_APPEND_ONLY = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
# Parameters that switch off triggers or constraints for a session.
FORBIDDEN_PARAMETERS = ("session_replication_role",)

# pg_roles column: (value the application role must have, keyword that sets it, keyword that
# unsets it). Only a superuser may change the last three.
ROLE_ATTRIBUTES = {
    "rolcanlogin": (True, "LOGIN", "NOLOGIN"),
    "rolinherit": (False, "INHERIT", "NOINHERIT"),
    "rolcreatedb": (False, "CREATEDB", "NOCREATEDB"),
    "rolcreaterole": (False, "CREATEROLE", "NOCREATEROLE"),
    "rolsuper": (False, "SUPERUSER", "NOSUPERUSER"),
    "rolreplication": (False, "REPLICATION", "NOREPLICATION"),
    "rolbypassrls": (False, "BYPASSRLS", "NOBYPASSRLS"),
}
SUPERUSER_ONLY_ATTRIBUTES = ("rolsuper", "rolreplication", "rolbypassrls")
_ATTRIBUTES_OF = f"SELECT {', '.join(ROLE_ATTRIBUTES)} FROM pg_roles WHERE rolname = %s"  # noqa: S608

# Unquoted PostgreSQL identifiers only: a name that needs quotes is a typo more often than not,
# and this one ends up in GRANT statements.
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RoleSetupError(Exception):
    """The role cannot be set up as asked; nothing was changed."""


@dataclass(frozen=True)
class RoleSetup:
    role: str
    owner: str
    created: bool
    password_set: bool
    business: int
    read_only: tuple[str, ...]
    append_only: tuple[str, ...]
    sequences: int
    partitions: int = 0
    detached: int = 0


def apply_app_role(
    connection: BaseDatabaseWrapper, *, role: str, password: str | None = None
) -> RoleSetup:
    """Create or update `role` as the application role, run as the owner of the tables.

    Idempotent: a second run leaves the same grants. `password`, when given, is sent as a SCRAM
    verifier computed here, so it never appears in the server's statement log.
    """
    if connection.vendor != "postgresql":
        raise RoleSetupError("db_roles needs PostgreSQL: SQLite has no roles.")
    if not ROLE_NAME.fullmatch(role):
        raise RoleSetupError(
            f"{role!r} is not a role name db_roles accepts: lower-case letters, digits and "
            "underscores, at most 63, not starting with a digit."
        )
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles"
            " WHERE rolname = current_user"
        )
        owner, is_superuser, can_create_roles = cursor.fetchone()
        if role == owner:
            raise RoleSetupError(
                f"{role} is the role running db_roles, the owner of the tables: the application "
                "role must be another one."
            )
        _check_ownership(cursor, connection, owner)
        created = _create_or_alter_role(
            cursor,
            connection,
            role=role,
            password=password,
            may_create_roles=is_superuser or can_create_roles,
            is_superuser=is_superuser,
        )
        _grant_schema(cursor, role=role, owner=owner)
        relations = _grant_relations(cursor, role=role)
        business, read_only, append_only, children, detached, sequences = relations
        _grant_functions(cursor, role=role)
        _grant_future_relations(cursor, role=role, owner=owner)
        problems = _problems(
            cursor, role=role, append_only=append_only, children=children, detached=detached
        )
        if problems:
            raise RoleSetupError(
                f"{role} cannot be left with least privilege (nothing was changed): "
                + "; ".join(problems)
                + "."
            )
    return RoleSetup(
        role=role,
        owner=owner,
        created=created,
        password_set=password is not None,
        business=len(business),
        read_only=tuple(read_only),
        append_only=tuple(append_only),
        sequences=len(sequences),
        partitions=len(children),
        detached=len(detached),
    )


def app_roles_of_owner(connection: BaseDatabaseWrapper) -> list[str]:
    """The roles that the current role's default privileges in this schema grant to.

    db_roles writes those entries, so they name exactly the application roles it set up.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT pg_get_userbyid(a.grantee)"
            " FROM pg_default_acl d, aclexplode(d.defaclacl) a"
            " WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
            "   AND d.defaclnamespace = current_schema()::regnamespace"
            "   AND d.defaclobjtype = 'r' AND a.grantee <> 0"
            " ORDER BY 1"
        )
        return [name for (name,) in cursor.fetchall()]


def append_only_tables() -> list[str]:
    return [apps.get_model(label)._meta.db_table for label in APPEND_ONLY_MODELS]


def _check_ownership(cursor, connection: BaseDatabaseWrapper, owner: str) -> None:
    tables = sorted(set(connection.introspection.django_table_names()) | set(READ_ONLY_TABLES))
    cursor.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)"
        "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        [tables],
    )
    owners = dict(cursor.fetchall())
    missing = [name for name in append_only_tables() if name not in owners]
    if missing:
        raise RoleSetupError(
            f"{', '.join(missing)} does not exist in this database: run `migrate` first."
        )
    others = {by for by in owners.values() if by != owner}
    if others:
        tables = sorted(name for name, by in owners.items() if by != owner)
        shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
        raise RoleSetupError(
            "run db_roles as the owner of the tables (the role that runs migrations): you are "
            f"{owner}; the tables belong to {', '.join(sorted(others))} ({shown})."
        )


def _create_or_alter_role(
    cursor,
    connection: BaseDatabaseWrapper,
    *,
    role: str,
    password: str | None,
    may_create_roles: bool,
    is_superuser: bool,
) -> bool:
    cursor.execute(_ATTRIBUTES_OF, [role])
    row = cursor.fetchone()
    name = _ident(role)
    secret, params = _password_clause(connection, role, password)
    if row is None:
        if not may_create_roles:
            raise RoleSetupError(
                f"role {role} does not exist and the role running db_roles may not create roles"
                f" (it needs CREATEROLE): create it as a superuser (`CREATE ROLE {role} LOGIN`),"
                " then run db_roles again."
            )
        cursor.execute(f"CREATE ROLE {name} {' '.join(_fixes(ROLE_ATTRIBUTES))}{secret}", params)
        return True
    wrong = _wrong(row)
    if not wrong and password is None:
        return False
    if not may_create_roles:
        change = ", ".join([*_fixes(wrong), *(["a new password"] if password else [])])
        raise RoleSetupError(
            f"role {role} needs {change}, and the role running db_roles may not alter roles"
            " (it needs CREATEROLE)."
        )
    beyond = [n for n in wrong if n in SUPERUSER_ONLY_ATTRIBUTES]
    if beyond and not is_superuser:
        raise RoleSetupError(
            f"role {role} has {', '.join(_keywords(beyond))}: only a superuser can take that away"
            f" (`ALTER ROLE {role} {' '.join(_fixes(beyond))}`)."
        )
    # Only the attributes that differ: PostgreSQL refuses NOBYPASSRLS or NOREPLICATION from a
    # non-superuser even when they would change nothing.
    cursor.execute(f"ALTER ROLE {name} {' '.join(_fixes(wrong))}{secret}", params)
    return False


def _wrong(row: tuple) -> list[str]:
    """The attributes (pg_roles columns) of a role's row that differ from the wanted ones."""
    return [
        column
        for column, value in zip(ROLE_ATTRIBUTES, row, strict=True)
        if value != ROLE_ATTRIBUTES[column][0]
    ]


def _fixes(columns) -> list[str]:
    """The keywords that give these attributes their wanted values (NOSUPERUSER, LOGIN …)."""
    return [
        ROLE_ATTRIBUTES[c][1] if ROLE_ATTRIBUTES[c][0] else ROLE_ATTRIBUTES[c][2] for c in columns
    ]


def _keywords(columns) -> list[str]:
    """The keywords naming the unwanted values these attributes have (SUPERUSER, NOLOGIN …)."""
    return [
        ROLE_ATTRIBUTES[c][2] if ROLE_ATTRIBUTES[c][0] else ROLE_ATTRIBUTES[c][1] for c in columns
    ]


def _password_clause(
    connection: BaseDatabaseWrapper, role: str, password: str | None
) -> tuple[str, list[str]]:
    if password is None:
        return "", []
    # libpq's PQencryptPasswordConn, as psql's \password uses it: the server's
    # password_encryption (scram-sha-256) decides the format.
    connection.ensure_connection()
    verifier = connection.connection.pgconn.encrypt_password(password.encode(), role.encode())
    return " PASSWORD %s", [verifier.decode()]


def _grant_schema(cursor, *, role: str, owner: str) -> None:
    r = _ident(role)
    # Membership in the owner would let the role SET ROLE to it, NOINHERIT or not.
    cursor.execute(
        "SELECT 1 FROM pg_auth_members WHERE member = %s::regrole AND roleid = %s::regrole",
        [role, owner],
    )
    if cursor.fetchone():
        cursor.execute(f"REVOKE {_ident(owner)} FROM {r}")
    cursor.execute(
        "SELECT current_schema(), current_database(),"
        " pg_has_role(current_user, n.nspowner, 'USAGE'),"
        " has_schema_privilege('public', n.oid, 'CREATE'),"
        " pg_has_role(current_user, d.datdba, 'USAGE')"
        " FROM pg_namespace n, pg_database d"
        " WHERE n.nspname = current_schema() AND d.datname = current_database()"
    )
    schema, database, owns_schema, public_may_create, owns_database = cursor.fetchone()
    s = _ident(schema)
    cursor.execute(f"REVOKE ALL ON SCHEMA {s} FROM {r}")
    cursor.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    if owns_schema and public_may_create:
        # The default before PostgreSQL 15, kept by databases upgraded from then.
        cursor.execute(f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC")
    if owns_database:
        cursor.execute(f"REVOKE CREATE ON DATABASE {_ident(database)} FROM {r}")


def _grant_relations(cursor, *, role: str) -> tuple[list[str], ...]:
    """Revoke everything on the owner's relations, then grant exactly what the app needs."""
    business, read_only, append_only, children, detached, sequences, narrow_sequences = _relations(
        cursor
    )
    r = _ident(role)
    grants = [
        ("TABLE", business + read_only + append_only + children + detached, None),
        ("TABLE", business, TABLE_PRIVILEGES),
        ("TABLE", read_only, READ_ONLY_PRIVILEGES),
        ("TABLE", append_only, APPEND_ONLY_PRIVILEGES),
        ("TABLE", children, PARTITION_PRIVILEGES),
        ("SEQUENCE", sequences + narrow_sequences, None),
        # The identity sequences of append-only tables stay ungranted: INSERT does not need
        # them, and nextval() by hand would only burn ids.
        ("SEQUENCE", sequences, SEQUENCE_PRIVILEGES),
    ]
    for kind, names, privileges in grants:
        if not names:
            continue
        if privileges is None:
            cursor.execute(f"REVOKE ALL ON {kind} {', '.join(names)} FROM {r}")
        else:
            cursor.execute(f"GRANT {', '.join(privileges)} ON {kind} {', '.join(names)} TO {r}")
    forbidden = ", ".join(FORBIDDEN_ON_APPEND_ONLY)
    cursor.execute(f"REVOKE {forbidden} ON TABLE {', '.join(append_only + children)} FROM PUBLIC")
    if detached:
        cursor.execute(f"REVOKE ALL ON TABLE {', '.join(detached)} FROM PUBLIC")
    return business, read_only, append_only, children, detached, sequences


def _grant_functions(cursor, *, role: str) -> None:
    """EXECUTE on the owner's functions the app calls, where the migrations have made them."""
    for signature in APP_FUNCTIONS:
        cursor.execute("SELECT to_regprocedure(%s)::text", [signature])
        (found,) = cursor.fetchone()
        if found is not None:
            cursor.execute(f"REVOKE ALL ON FUNCTION {found} FROM PUBLIC")
            cursor.execute(f"GRANT EXECUTE ON FUNCTION {found} TO {_ident(role)}")


def _grant_future_relations(cursor, *, role: str, owner: str) -> None:
    """Default privileges for what later migrations create, as the owner, in this schema.

    Revoked first so that every run ends with the same entries; also without IN SCHEMA, where a
    hand-made entry would apply to every schema. A new append-only table or partition gets the
    business grants from here until db_roles runs again, which `migrate` does (post_migrate).
    """
    cursor.execute("SELECT current_schema()")
    s, r = _ident(cursor.fetchone()[0]), _ident(role)
    default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {_ident(owner)}"
    for kind in ("TABLES", "SEQUENCES"):
        cursor.execute(f"{default} REVOKE ALL ON {kind} FROM {r}")
        cursor.execute(f"{default} IN SCHEMA {s} REVOKE ALL ON {kind} FROM {r}")
    cursor.execute(f"{default} IN SCHEMA {s} GRANT {', '.join(TABLE_PRIVILEGES)} ON TABLES TO {r}")
    cursor.execute(
        f"{default} IN SCHEMA {s} GRANT {', '.join(SEQUENCE_PRIVILEGES)} ON SEQUENCES TO {r}"
    )


_RELATIONS = """
WITH RECURSIVE narrow(oid) AS (
    SELECT c.oid FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%(append_only)s)
    UNION SELECT i.inhrelid FROM pg_inherits i JOIN narrow ON i.inhparent = narrow.oid
), narrow_sequences(oid) AS (
    SELECT d.objid FROM pg_depend d JOIN narrow ON d.refobjid = narrow.oid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i')
)
SELECT c.oid::regclass::text, c.relkind = 'S',
       c.oid IN (SELECT oid FROM narrow UNION ALL SELECT oid FROM narrow_sequences),
       c.relname = ANY(%(read_only)s), c.relowner = current_user::regrole,
       c.relname = ANY(%(append_only)s) AND c.relnamespace = current_schema()::regnamespace,
       c.relkind = 'r' AND c.relname ~ %(detached)s AND c.oid NOT IN (SELECT oid FROM narrow)
FROM pg_class c
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND (c.relnamespace = current_schema()::regnamespace OR c.oid IN (SELECT oid FROM narrow))
ORDER BY 1
"""


def _relations(cursor) -> tuple[list[str], ...]:
    """The current role's relations in the schema, by what the app may do with them.

    Names come as `oid::regclass::text`: quoted where needed, schema-qualified where off the
    search path (a partition may live in another schema).
    """
    # Imported here: this module is loaded with the app registry, before the models are.
    from audit import partitions

    cursor.execute(
        _RELATIONS,
        {
            "append_only": append_only_tables(),
            "read_only": list(READ_ONLY_TABLES),
            "detached": f"^{partitions.LEAF_NAME.pattern}$",
        },
    )
    business: list[str] = []
    read_only: list[str] = []
    append_only: list[str] = []
    children: list[str] = []
    detached: list[str] = []
    sequences: list[str] = []
    narrow_sequences: list[str] = []
    not_owned: list[str] = []
    for row in cursor.fetchall():
        name, is_sequence, is_narrow, is_read_only, owned, is_root, is_detached = row
        if not owned:
            if is_narrow:
                not_owned.append(name)
            continue  # another role's relation: not ours to grant
        if is_sequence:
            (narrow_sequences if is_narrow else sequences).append(name)
        elif is_narrow:
            (append_only if is_root else children).append(name)
        elif is_detached:
            detached.append(name)
        elif is_read_only:
            read_only.append(name)
        else:
            business.append(name)
    if not_owned:
        raise RoleSetupError(
            "these partitions of an append-only table belong to another role, so their grants"
            f" cannot be narrowed: {', '.join(not_owned)}."
        )
    return business, read_only, append_only, children, detached, sequences, narrow_sequences


def _ident(name: str) -> str:
    """A quoted SQL identifier (names from the catalog may need it)."""
    return '"' + name.replace('"', '""') + '"'


# What the application role could still do beyond least privilege (or cannot do that it needs),
# each query giving rows of (acting role, what it may do). The acting role is the application
# role itself or a role it may SET ROLE to; has_*_privilege counts PUBLIC's grants and those a
# role inherits.
_ACTING = "FROM pg_roles a WHERE pg_has_role(%(role)s, a.oid, 'MEMBER')"
_TABLE_PROBLEMS = (
    "SELECT a.rolname, 'may ' || p.privilege || ' ' || t.name"
    " FROM pg_roles a, unnest(%(tables)s::text[]) t(name),"
    "   unnest(%(forbidden)s::text[]) p(privilege)"
    " WHERE pg_has_role(%(role)s, a.oid, 'MEMBER')"
    "   AND (has_table_privilege(a.oid, t.name, p.privilege)"
    "     OR p.privilege IN ('UPDATE', 'INSERT', 'SELECT')"
    "       AND has_any_column_privilege(a.oid, t.name, p.privilege))"
)
_PROBLEMS = (
    "SELECT %(role)s, 'may SET ROLE to the superuser ' || a.rolname"
    f" {_ACTING} AND a.rolsuper AND a.rolname <> %(role)s",
    _TABLE_PROBLEMS,
    "SELECT a.rolname, 'may SET ' || p.name"
    " FROM pg_roles a, unnest(%(parameters)s::text[]) p(name)"
    " WHERE pg_has_role(%(role)s, a.oid, 'MEMBER')"
    "   AND has_parameter_privilege(a.oid, p.name, 'SET')",
    f"SELECT a.rolname, 'may CREATE in the schema' {_ACTING}"
    "   AND has_schema_privilege(a.oid, current_schema(), 'CREATE')",
    "SELECT pg_get_userbyid(c.relowner), 'owns ' || c.oid::regclass::text FROM pg_class c"
    " WHERE c.relnamespace = current_schema()::regnamespace"
    "   AND pg_has_role(%(role)s, c.relowner, 'MEMBER')",
    "SELECT pg_get_userbyid(n.nspowner), 'owns the schema ' || n.nspname FROM pg_namespace n"
    " WHERE n.nspname = current_schema() AND pg_has_role(%(role)s, n.nspowner, 'MEMBER')",
    "SELECT pg_get_userbyid(d.datdba), 'owns the database ' || d.datname FROM pg_database d"
    " WHERE d.datname = current_database() AND pg_has_role(%(role)s, d.datdba, 'MEMBER')",
    "SELECT %(role)s, 'has no USAGE on the schema'"
    " WHERE NOT has_schema_privilege(%(role)s, current_schema(), 'USAGE')",
    "SELECT %(role)s, 'may not CONNECT to the database'"
    " WHERE NOT has_database_privilege(%(role)s, current_database(), 'CONNECT')",
)


def _problems(
    cursor,
    *,
    role: str,
    append_only: list[str],
    children: list[str],
    detached: list[str],
) -> list[str]:
    """What `role` may still do beyond least privilege, read back from the catalog."""
    cursor.execute(_ATTRIBUTES_OF, [role])
    problems = [f"it has {keyword}" for keyword in _keywords(_wrong(cursor.fetchone()))]
    params = {
        "role": role,
        "tables": append_only,
        "forbidden": list(FORBIDDEN_ON_APPEND_ONLY),
        "parameters": list(FORBIDDEN_PARAMETERS),
    }
    # The same question of the table privileges, asked of the partitions (written through the
    # parent only) and of detached partitions (the owner's alone).
    checks = [(query, params) for query in _PROBLEMS]
    checks.append(
        (
            _TABLE_PROBLEMS,
            {
                **params,
                "tables": list(children),
                "forbidden": ["INSERT", *FORBIDDEN_ON_APPEND_ONLY],
            },
        )
    )
    checks.append(
        (
            _TABLE_PROBLEMS,
            {
                **params,
                "tables": list(detached),
                "forbidden": ["SELECT", "INSERT", *FORBIDDEN_ON_APPEND_ONLY],
            },
        )
    )
    for query, values in checks:
        cursor.execute(query, values)
        problems += [
            f"it {what}" + ("" if who == role else f" (as {who})")
            for who, what in cursor.fetchall()
        ]
    cursor.execute(
        "SELECT s, 'may not EXECUTE ' || s FROM unnest(%s::text[]) s"
        " WHERE to_regprocedure(s) IS NOT NULL"
        "   AND NOT has_function_privilege(%s, to_regprocedure(s), 'EXECUTE')",
        [list(APP_FUNCTIONS), role],
    )
    problems += [f"it {what}" for _, what in cursor.fetchall()]
    return problems
