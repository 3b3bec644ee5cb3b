"""Values users type: money (SPEC §4), dates and datetimes (§3 Time), masking (§9), emails.

Strict by design: a value is exactly what the spec allows or a ValueError, never a guess.
"""

from __future__ import annotations

import pytest

from loyalty_cli.values import (add_months, format_money, mask_email, mask_phone, month_end, parse_date,
                                parse_datetime, parse_email, parse_money, parse_phone)

# -- money: \d+(\.\d{1,d})? ------------------------------------------------------------


@pytest.mark.parametrize("text, minor", [
    ("12.50", 1250),
    ("12.5", 1250),
    (" 7 ", 700),
    ("0", 0),
    ("0.01", 1),
    ("007.10", 710),
    ("10000000000.00", 10**12),  # the largest amount allowed: 10^12 minor units
])
def test_parse_money_accepts(text, minor):
    assert parse_money(text) == minor


@pytest.mark.parametrize("text", [
    "1e3",          # exponent
    "-5",           # sign
    "+5",
    "1,234.56",     # thousands separator
    "12.505",       # more decimals than currency_decimals
    "",
    "   ",
    "abc",
    "12.",          # a dot needs digits after it
    ".50",          # and before it
    "12,50",        # a decimal comma without --decimal-comma is an error, never misread
    "1.234,56",
    "12 50",
    "1_000",
    "10000000000.01",  # one minor unit over 10^12
])
def test_parse_money_rejects(text):
    with pytest.raises(ValueError):
        parse_money(text)


@pytest.mark.parametrize("text, minor", [
    ("1.234,56", 123456),
    ("12,5", 1250),
    ("12,50", 1250),
    ("1234", 123400),
    ("1234,56", 123456),
    ("1.234.567", 123456700),
    ("0,01", 1),
    # SPEC §4: with --decimal-comma the plain form is *also* accepted; "1.23" and "12.50"
    # cannot be thousands groups, so they are read one way only.
    ("1.23", 123),
    ("12.50", 1250),
    ("1.234", 123400),  # not plain with 2 decimals: one thousand two hundred and thirty-four
])
def test_parse_money_with_decimal_comma_accepts(text, minor):
    assert parse_money(text, decimal_comma=True) == minor


def test_decimal_comma_refuses_a_text_both_forms_read_differently():
    # With three decimals "1.234" is 1.234 plain and 1234 in thousands: ambiguous, never guessed.
    with pytest.raises(ValueError, match="ambiguous"):
        parse_money("1.234", 3, decimal_comma=True)
    assert parse_money("1,234", 3, decimal_comma=True) == 1234
    assert parse_money("1.234,5", 3, decimal_comma=True) == 1234500


@pytest.mark.parametrize("text", [
    "1,234.56",
    "1.234,567",    # too many decimals
    "1234.567",     # a thousands group needs at most 3 leading digits
    "1.2345",
    ",50",
    "12,",
    "-1,00",
])
def test_parse_money_with_decimal_comma_rejects(text):
    with pytest.raises(ValueError):
        parse_money(text, decimal_comma=True)


def test_parse_money_follows_currency_decimals():
    assert parse_money("12", decimals=0) == 12
    assert parse_money("1.234", decimals=3) == 1234
    assert parse_money("1.2", decimals=3) == 1200
    with pytest.raises(ValueError):
        parse_money("12.5", decimals=0)
    with pytest.raises(ValueError):
        parse_money("1.2345", decimals=3)


def test_parse_money_limit_is_in_minor_units():
    assert parse_money("1000000000000", decimals=0) == 10**12
    with pytest.raises(ValueError, match="too large"):
        parse_money("1000000000001", decimals=0)


def test_parse_money_rejects_non_ascii_digits():
    with pytest.raises(ValueError):
        parse_money("１２.５０")


def test_format_money():
    assert format_money(1250) == "12.50"
    assert format_money(5) == "0.05"
    assert format_money(0) == "0.00"
    assert format_money(-1250) == "-12.50"
    assert format_money(1250, 0) == "1250"
    assert format_money(1234, 3) == "1.234"


# -- dates and datetimes ---------------------------------------------------------------


@pytest.mark.parametrize("text, stored", [
    ("2025-01-15", "2025-01-15T00:00:00"),          # a bare date means 00:00 of that day
    ("2025-01-15T10:30", "2025-01-15T10:30:00"),    # seconds added
    ("2025-01-15T10:30:45", "2025-01-15T10:30:45"),
    (" 2024-02-29T23:59:59 ", "2024-02-29T23:59:59"),
])
def test_parse_datetime_accepts(text, stored):
    assert parse_datetime(text) == stored


@pytest.mark.parametrize("text", [
    "2025-01-15T10:30Z",         # offsets are rejected: times are shop-local
    "2025-01-15T10:30+01:00",
    "2025-01-15T10:30:00-05:00",
    "2025-02-30",                # not a calendar day
    "2025-13-01",
    "2025-01-15T24:00",
    "2025-01-15T10:60",
    "2025-1-5",
    "15/01/2025",
    "2025-01-15T10",
    "2025-01-15T10:30:00.123",
    "",
    "today",
])
def test_parse_datetime_rejects(text):
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_parse_date():
    assert parse_date("2024-02-29") == "2024-02-29"
    assert parse_date(" 2025-01-15 ") == "2025-01-15"
    for bad in ("2025-02-29", "2025-01-15T10:30", "20250115", "2025-01"):
        with pytest.raises(ValueError):
            parse_date(bad)


@pytest.mark.parametrize("date, months, expected", [
    ("2025-01-31", 1, "2025-02-28"),   # clamped to the month's last day
    ("2024-01-31", 1, "2024-02-29"),   # leap year
    ("2025-03-31", 1, "2025-04-30"),
    ("2025-03-31", -1, "2025-02-28"),
    ("2024-02-29", 12, "2025-02-28"),
    ("2025-11-15", 2, "2026-01-15"),   # across a year end
    ("2025-01-15", 12, "2026-01-15"),
    ("2025-01-15", 0, "2025-01-15"),
    ("2025-05-31T18:00:00", 1, "2025-06-30"),  # a datetime counts by its date
])
def test_add_months_keeps_the_day_clamped(date, months, expected):
    assert add_months(date, months) == expected


@pytest.mark.parametrize("date, expected", [
    ("2025-02-10", "2025-02-28"),
    ("2024-02-10", "2024-02-29"),
    ("2025-12-01", "2025-12-31"),
    ("2025-04-30", "2025-04-30"),
    ("2025-04-15T10:00:00", "2025-04-30"),
])
def test_month_end(date, expected):
    assert month_end(date) == expected


# -- personal data ------------------------------------------------------------------------


def test_mask_email():
    assert mask_email("ana@shop.example") == "a***@shop.example"
    assert mask_email("bartholomew.jones@mail.example") == "b***@mail.example"
    assert mask_email(None) is None


def test_mask_phone_keeps_the_last_four_digits():
    assert mask_phone("07700 901234") == "*******1234"      # 11 digits: 7 hidden
    assert mask_phone("+44 7700 901234") == "********1234"  # 12 digits: 8 hidden
    assert mask_phone("12345") == "***2345"                 # never fewer than 3 stars
    assert mask_phone(None) is None


def test_masked_values_do_not_contain_the_hidden_parts():
    assert "ana" not in mask_email("ana@shop.example")
    assert "7700" not in mask_phone("+44 7700 901234")


@pytest.mark.parametrize("text, stored", [
    ("ana@shop.example", "ana@shop.example"),
    ("Ana.Li@Shop.Example", "ana.li@shop.example"),   # emails are compared case-insensitively
    ("  ana+news@shop.example ", "ana+news@shop.example"),
])
def test_parse_email_accepts(text, stored):
    assert parse_email(text) == stored


@pytest.mark.parametrize("text", [
    "",
    "ana",
    "ana@",
    "@shop.example",
    "ana@shop",
    "ana@shop.",
    "ana@@shop.example",
    "ana li@shop.example",
    "ana@shop.example,bo@shop.example",
    "<ana@shop.example>",
    "ana@shop.example; DROP TABLE members",
    "a" * 250 + "@shop.example",  # longer than 254 characters
])
def test_parse_email_rejects(text):
    with pytest.raises(ValueError):
        parse_email(text)


def test_parse_phone():
    assert parse_phone(" +44 7700 900123 ") == "+44 7700 900123"
    assert parse_phone("01632 960-001") == "01632 960-001"
    for bad in ("", "1234", "call me", "+44 7700 9001x3", "0" * 40):
        with pytest.raises(ValueError):
            parse_phone(bad)


def test_parse_phone_accepts_a_leading_parenthesis():
    assert parse_phone("(01632) 960001") == "(01632) 960001"


def test_an_amount_of_thousands_of_digits_is_too_large_not_a_conversion_error():
    from loyalty_cli import values

    with pytest.raises(ValueError, match="is too large"):
        values.parse_money("1" * 5000)
    with pytest.raises(ValueError, match="is too large"):
        values.parse_money("1" * 5000, 2, True)
