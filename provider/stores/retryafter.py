"""The Retry-After response header (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date.

An HTTP-date is accepted in the three forms RFC 9110 section 5.6.7 names: IMF-fixdate
(`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
(`Sun Nov  6 08:49:37 1994`), the same three Go's net/http ParseTime tries. Anything else is garbage a
registry sent: it is ignored (the caller's own backoff applies), never an exception.
"""

from __future__ import annotations

import calendar
import re
import time

_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = f"(?P<month>{'|'.join(_MONTHS)})"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_IMF_FIXDATE = re.compile(rf"{_DAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"{_LONG_DAY}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT")
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} (?P<day>[ 0-9][0-9]) {_TIME} (?P<year>[0-9]{{4}})")
_DELAY_SECONDS = re.compile(r"[0-9]+")  # 1*DIGIT: ASCII digits only, no sign, no fraction


def parse_http_date(text: str, now: float) -> float | None:
    """Seconds since the epoch of an HTTP-date in any of its three forms, or None if `text` is not one."""
    for form in (_IMF_FIXDATE, _RFC850, _ASCTIME):
        match = form.fullmatch(text)
        if match is None:
            continue
        year = int(match["year"])
        if form is _RFC850:
            year = _two_digit_year(year, now)
        fields = (year, _MONTHS[match["month"]], int(match["day"]), int(match["hour"]), int(match["minute"]),
                  int(match["second"]))
        if not (1 <= fields[2] <= 31 and fields[3] <= 23 and fields[4] <= 59 and fields[5] <= 60):
            return None
        return float(calendar.timegm((*fields, 0, 0, 0)))
    return None


def _two_digit_year(year: int, now: float) -> int:
    """RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent past such year."""
    this_year = time.gmtime(now).tm_year
    candidate = this_year - this_year % 100 + year
    return candidate - 100 if candidate > this_year + 50 else candidate


def retry_after_seconds(value: str, now: float) -> float | None:
    """The delay a Retry-After value asks for, or None when it asks for nothing usable.

    As containers/image (docker/docker_client.go, parseRetryAfter) decides: delay-seconds first, then an
    HTTP-date; a date already past and a value that is neither are ignored, so the caller's backoff applies.
    """
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    when = parse_http_date(value, now)
    return None if when is None or when <= now else when - now
