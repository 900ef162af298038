"""JSON log lines: one object per line with the time, level, logger, message and every `extra` field."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from provider.facts import rfc3339
from provider.logs import JSONFormatter, RateLimited, TextFormatter


def _record(extra: dict[str, object], exc_info: object = None) -> logging.LogRecord:
    record = logging.getLogger("sigwarden.request").makeRecord(
        "sigwarden.request", logging.INFO, __file__, 1, "request %s", ("done",), exc_info, extra=extra)
    record.created = 1795980354.9
    return record


def test_a_line_is_one_json_object_with_the_extra_fields() -> None:
    extra = {"endpoint": "verify", "traceID": 't"1\n', "outcomes": {"verified": 3}, "path": Path("/x")}
    line = JSONFormatter().format(_record(extra))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry == {"time": rfc3339(datetime.fromtimestamp(1795980354.9, UTC)), "level": "info",
                     "logger": "sigwarden.request", "msg": "request done", "endpoint": "verify",
                     "traceID": 't"1\n', "outcomes": {"verified": 3}, "path": "/x"}
    assert entry["time"] == "2026-11-29T19:25:54Z"


def test_an_exception_is_logged_with_its_traceback() -> None:
    try:
        raise ValueError("broken trust file")
    except ValueError:
        entry = json.loads(JSONFormatter().format(_record({}, sys.exc_info())))
    assert entry["error"].startswith("Traceback") and "ValueError: broken trust file" in entry["error"]


def test_colour_codes_never_reach_a_line() -> None:
    record = _record({})
    record.msg, record.args = "\x1b[35m\x1b[1mGET /readyz\x1b[0m %s", ("200",)
    assert json.loads(JSONFormatter().format(record))["msg"] == "GET /readyz 200"
    assert "\x1b" not in TextFormatter().format(record)


def test_text_lines_keep_every_field() -> None:
    line = TextFormatter().format(_record({"endpoint": "verify", "images": {"a:v1": "unsigned"}, "peer": "x y"}))
    assert line == ('2026-11-29T19:25:54Z info    sigwarden.request: request done  endpoint=verify '
                    'images={"a:v1": "unsigned"} peer="x y"')


def test_rate_limited_logs_a_reason_once_per_interval_and_counts_the_rest() -> None:
    logger = logging.getLogger("sigwarden.test.ratelimit")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    now = [100.0]
    limited = RateLimited(logger, interval=60, clock=lambda: now[0])
    try:
        assert limited.warning("a", "first", {"peer": "p"})
        assert not limited.warning("a", "again", {})
        assert limited.warning("b", "another reason", {})  # each reason has its own allowance
        now[0] += 59.9
        assert not limited.warning("a", "still held", {})
        now[0] += 0.2
        assert limited.warning("a", "after a minute", {})
    finally:
        logger.removeHandler(handler)
    assert [(r.getMessage(), r.reason, r.suppressedSinceLast) for r in records] == [  # type: ignore[attr-defined]
        ("first", "a", 0), ("another reason", "b", 0), ("after a minute", "a", 2)]
    assert records[0].levelno == logging.WARNING and records[0].peer == "p"  # type: ignore[attr-defined]
