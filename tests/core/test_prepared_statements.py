"""The hot statements (core.rows.cursor): bound on the server, prepared once per connection, and
still seen by the query log as every other statement."""

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from core.postgresql.base import _numbered
from invoices.selectors import _for_payment_sql, invoice_for_payment
from tests.money_factories import make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _prepared(sql):
    """(executions with a custom plan + with the generic plan) of `sql` as this session prepared
    it, or None if it is not prepared here."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT custom_plans + generic_plans FROM pg_prepared_statements "
            "WHERE statement = %s AND NOT from_sql",
            [_numbered(sql)],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


@pytest.fixture
def fresh_connection():
    connection.close()  # nothing prepared on the connection the test starts with
    yield
    connection.close()


def test_a_hot_statement_is_prepared_on_its_first_run_and_reused_after(fresh_connection, marketing):
    invoice = make_invoice(actor=marketing)
    assert _prepared(_for_payment_sql()) is None

    first = invoice_for_payment(invoice.pk)
    second = invoice_for_payment(invoice.pk)

    assert (first.pk, first.number) == (second.pk, second.number) == (invoice.pk, invoice.number)
    assert _prepared(_for_payment_sql()) == 2


def test_a_new_connection_prepares_the_statement_again(fresh_connection, marketing):
    invoice = make_invoice(actor=marketing)
    invoice_for_payment(invoice.pk)
    connection.close()  # as CONN_MAX_AGE or a failed health check would

    again = invoice_for_payment(invoice.pk)

    assert again.number == invoice.number
    assert _prepared(_for_payment_sql()) == 1


def test_with_preparing_switched_off_the_statement_runs_unprepared(fresh_connection, marketing):
    invoice = make_invoice(actor=marketing)
    settings_dict = connections["default"].settings_dict
    before = settings_dict["PREPARE_HOT_STATEMENTS"]  # DB_PREPARE_HOT_STATEMENTS
    settings_dict["PREPARE_HOT_STATEMENTS"] = False
    try:
        connection.close()
        read = invoice_for_payment(invoice.pk)
        assert read.number == invoice.number
        assert _prepared(_for_payment_sql()) is None
    finally:
        settings_dict["PREPARE_HOT_STATEMENTS"] = before


def test_the_query_log_shows_a_hot_statement_with_its_values(marketing):
    invoice = make_invoice(actor=marketing)

    with CaptureQueriesContext(connection) as captured:
        invoice_for_payment(invoice.pk)

    (query,) = captured.captured_queries
    assert query["sql"] == _for_payment_sql().replace("%s", str(invoice.pk))


def test_placeholders_are_numbered_in_order_and_anything_else_with_percent_is_refused():
    assert _numbered("UPDATE t SET a = %s WHERE b = %s") == "UPDATE t SET a = $1 WHERE b = $2"
    with pytest.raises(ValueError, match="%s placeholders only"):
        _numbered("SELECT %s WHERE name LIKE 'a%%'")
