from datetime import date

import pytest

from audit import retention
from audit.models import Action


def test_every_action_has_exactly_one_class():
    for action in Action.values:
        holders = [name for name, actions in retention.CLASS_ACTIONS.items() if action in actions]
        assert len(holders) <= 1, action
        assert retention.class_of(action) == (holders[0] if holders else retention.OTHER)


def test_money_logins_and_errors_fall_in_their_classes():
    assert retention.class_of(Action.PAYMENT_RECEIVED) == retention.MONEY
    assert retention.class_of(Action.LOGIN_FAILED) == retention.ACCESS
    assert retention.class_of(Action.DATABASE_ERROR) == retention.ERRORS
    assert retention.class_of(Action.LEAD_CREATED) == retention.OTHER


def test_a_month_is_due_only_after_its_last_day_is_the_retention_behind(settings):
    settings.AUDIT_RETENTION_YEARS = {**settings.AUDIT_RETENTION_YEARS, "money": 10}
    december = date(2016, 12, 1)
    assert not retention.is_due("money", december, today=date(2026, 12, 31))
    assert retention.is_due("money", december, today=date(2027, 1, 1))


def test_month_arithmetic_crosses_years():
    assert retention.next_month(date(2026, 12, 15)) == date(2027, 1, 1)
    assert retention.add_months(date(2026, 11, 1), 14) == date(2028, 1, 1)
    assert retention.add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)


def test_an_unknown_class_is_refused():
    with pytest.raises(ValueError):
        retention.retention_years("forever")
