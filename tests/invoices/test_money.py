from decimal import Decimal

import pytest

from core.money import JsonDecimal, money_str, parse_money


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("134", "134.00"),
        ("134.5", "134.50"),
        (" 134.50 ", "134.50"),
        (134, "134.00"),
        (JsonDecimal("0.10"), "0.10"),
        ("1000000", "1000000.00"),
        ("1000000.00", "1000000.00"),
    ],
)
def test_plain_amounts_are_parsed_exactly(value, expected):
    assert str(parse_money(value)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e3", "Enter a plain amount with up to 2 decimals, such as 134.00."),
        (JsonDecimal("1E3"), "Enter a plain amount with up to 2 decimals, such as 134.00."),
        (JsonDecimal("1.5e1"), "Enter a plain amount with up to 2 decimals, such as 134.00."),
        ("NaN", "Enter a plain amount with up to 2 decimals, such as 134.00."),
        ("-Infinity", "Enter a plain amount with up to 2 decimals, such as 134.00."),
        ("+5", "Enter a plain amount with up to 2 decimals, such as 134.00."),
        ("1,000", "Enter a plain amount with up to 2 decimals, such as 134.00."),
        ("0x10", "Enter a plain amount with up to 2 decimals, such as 134.00."),
        ("10.001", "Use at most 2 decimal places."),
        (JsonDecimal("10.000"), "Use at most 2 decimal places."),
        ("0", "The amount must be greater than zero."),
        ("-0.01", "The amount must be greater than zero."),
        ("1000000.01", "The amount cannot be more than 1,000,000."),
        (10.5, 'Enter the amount as a decimal number or a string such as "134.00".'),
        (True, "Enter an amount such as 134.00."),
        (None, "Enter an amount such as 134.00."),
    ],
)
def test_anything_else_is_refused_in_words(value, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        parse_money(value)


def test_zero_is_allowed_where_asked_but_not_negative():
    assert parse_money("0", allow_zero=True) == Decimal("0.00")
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_money("-1", allow_zero=True)


def test_money_is_written_with_two_decimals():
    assert [money_str(Decimal("5")), money_str(Decimal("5.5")), money_str(None)] == [
        "5.00",
        "5.50",
        None,
    ]
