"""Retry-After values: RFC 9110's two forms, the three HTTP-date spellings, garbage ignored, never an exception."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.stores.retryafter import parse_http_date, retry_after_seconds

# RFC 9110 section 5.6.7 gives one instant in its three spellings; Go's net/http ParseTime (header.go,
# timeFormats: TimeFormat, time.RFC850, time.ANSIC) accepts the same three.
INSTANT = float(calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0)))
NOW_1994 = INSTANT - 30


@pytest.mark.parametrize("text", [
    "Sun, 06 Nov 1994 08:49:37 GMT",   # IMF-fixdate (RFC 9110 5.6.7)
    "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 format (RFC 9110 5.6.7)
    "Sun Nov  6 08:49:37 1994",        # ANSI C asctime() format (RFC 9110 5.6.7)
])
def test_the_three_http_date_forms_name_one_instant(text: str) -> None:
    assert parse_http_date(text, NOW_1994) == INSTANT
    assert retry_after_seconds(text, NOW_1994) == 30.0


@pytest.mark.parametrize(("text", "seconds"), [
    ("120", 120.0),  # RFC 9110 10.2.3 example: Retry-After: 120
    ("0", 0.0),
    (" 5 ", 5.0),    # field values are trimmed of optional white space (RFC 9110 5.5)
])
def test_delay_seconds(text: str, seconds: float) -> None:
    assert retry_after_seconds(text, NOW_1994) == seconds


@pytest.mark.parametrize("text", [
    "soon", "", "-1", "1.5", "+3", "0x10", "٣",   # not 1*DIGIT (the last is an Arabic-Indic digit)
    "Sun, 06 Nov 1994 08:49:37",                  # no GMT
    "06 Nov 1994 08:49:37 GMT",                   # no day name
    "Sun, 06 Nov 1994 25:49:37 GMT",              # no such hour
    "Sun, 36 Nov 1994 08:49:37 GMT",              # no such day
    "Sun, 06 Nov 1994 08:49:37 GMT trailing",
])
def test_garbage_is_ignored(text: str) -> None:
    assert retry_after_seconds(text, NOW_1994) is None


def test_a_date_already_past_is_ignored() -> None:
    # containers/image docker/docker_client.go parseRetryAfter: a date in the past falls back to the backoff.
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", INSTANT + 1) is None


def test_a_two_digit_year_more_than_fifty_years_ahead_is_in_the_past_century() -> None:
    # RFC 9110 5.6.7: a recipient of an rfc850-date with a two-digit year that appears to be more than 50 years
    # in the future interprets it as the most recent past year with the same last two digits.
    now = float(calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0)))
    assert parse_http_date("Friday, 01-Jan-99 00:00:00 GMT", now) == calendar.timegm((1999, 1, 1, 0, 0, 0))
    assert parse_http_date("Tuesday, 01-Jan-70 00:00:00 GMT", now) == calendar.timegm((2070, 1, 1, 0, 0, 0))


@given(st.text(max_size=80))
def test_any_text_gives_a_delay_or_none(text: str) -> None:
    delay = retry_after_seconds(text, NOW_1994)
    assert delay is None or delay >= 0
