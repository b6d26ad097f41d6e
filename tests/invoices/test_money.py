from decimal import Decimal

import pytest

from core.money import JsonDecimal, format_money, money_str, parse_money


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2,000", "2000.00"),
        ("2000.5", "2000.50"),
        ("1,000,000", "1000000.00"),
        ("1,00,000", "100000.00"),
        ("2,34,567.50", "234567.50"),
        (" 99,999 ", "99999.00"),
    ],
)
def test_forms_take_thousands_separators_where_they_belong(text, expected):
    assert str(parse_money(text, grouped=True)) == expected


@pytest.mark.parametrize(
    "text", ["2,00", "1,,000", "12,3456", ",100", "100,", "1,000.", "1.000,00", "1,0000,000"]
)
def test_a_comma_anywhere_else_is_refused(text):
    with pytest.raises(ValueError, match=r"^Put commas only between groups of digits"):
        parse_money(text, grouped=True)


def test_the_api_never_takes_separators():
    with pytest.raises(ValueError, match=r"^Enter a plain amount"):
        parse_money("2,000")


def test_grouped_amounts_keep_every_other_rule():
    with pytest.raises(ValueError, match="more than 1,000,000"):
        parse_money("1,000,001", grouped=True)
    with pytest.raises(ValueError, match="at most 2 decimal"):
        parse_money("2,000.001", grouped=True)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("100000", "INR", "₹1,00,000.00"),
        ("1234567.5", "INR", "₹12,34,567.50"),
        ("1000", "EUR", "€1,000.00"),
        ("100000", "EUR", "€100,000.00"),
        ("0", "EUR", "€0.00"),
        ("0.005", "INR", "₹0.01"),
    ],
)
def test_money_is_shown_in_its_currency_s_own_format(amount, currency, shown):
    assert format_money(Decimal(amount), currency) == shown
