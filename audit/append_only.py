"""The trigger that makes a table append-only on PostgreSQL, for the migrations that install it.

It refuses UPDATE and DELETE row by row, binds the table's owner too, and fires even under
`session_replication_role = replica` (ENABLE ALWAYS). TRUNCATE, DDL and the trigger itself are
kept from the application role by its grants (planbeta/db_roles.py). SQLite gets no trigger.
"""

from collections.abc import Callable
from typing import Any

CREATE = """
CREATE OR REPLACE FUNCTION {table}_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_refuse_change();

-- Fires even under session_replication_role = replica.
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_append_only;
"""

DROP = """
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
DROP FUNCTION IF EXISTS {table}_refuse_change();
"""


def operations(table: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """RunPython's forwards and backwards for `table` (a name from the model, never input)."""

    def run(sql: str) -> Callable[..., Any]:
        def apply(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql.format(table=table), params=None)

        return apply

    return run(CREATE), run(DROP)
