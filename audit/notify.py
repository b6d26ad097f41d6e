"""A doorbell for new audit rows: a NOTIFY at the commit of each transaction that wrote any.

The trigger (migration 0011_notify) is per statement and carries no payload, and PostgreSQL folds
identical notifications of one transaction into one, so a pay-and-convert with four audit rows
rings once, at its commit, and a rolled-back transaction never rings. Listeners (the activity
dashboard's live stream, monitoring.live) read the new rows through the audit-log API; the
notification says only that there is something to read, so nothing in it needs protecting.
"""

from collections.abc import Callable
from typing import Any

CHANNEL = "planbeta_audit"

CREATE = f"""
CREATE OR REPLACE FUNCTION audit_auditlog_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_auditlog_notify
    AFTER INSERT ON audit_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditlog_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_auditlog_notify ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_auditlog_notify();
"""


def operations() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """RunPython's forwards and backwards; SQLite gets no trigger (and no live stream)."""

    def run(sql: str) -> Callable[..., Any]:
        def apply(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql, params=None)

        return apply

    return run(CREATE), run(DROP)
