"""JSON log lines: one object per line with the time, level, logger, message and every `extra` field."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from provider.facts import rfc3339
from provider.logs import JSONFormatter


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
