"""Log lines: one JSON object per line (the default), fields a log pipeline can index, or `text` for a person at a
terminal. Every logger goes through here, gunicorn's and werkzeug's included. Never put secrets in `extra`."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# One encoder for every line (json.dumps would build one per call); encoding keeps no state between calls.
_ENCODE = json.JSONEncoder(default=str).encode
# Terminal colour and cursor codes (werkzeug colours its request lines): never part of a stored line.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FORMATS = ("json", "text")


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    return _ANSI.sub("", message) if "\x1b" in message else message


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _time(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))  # RFC 3339, UTC


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower(), "logger": record.name,
                                 "msg": _message(record)}
        entry.update(_extra(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _ENCODE(entry)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value …`, values JSON-encoded when they are not plain words."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={_plain(value)}" for key, value in _extra(record).items())
        line = f"{_time(record)} {record.levelname.lower():7} {record.name}: {_message(record)}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _plain(value: Any) -> str:
    if isinstance(value, str) and value and re.fullmatch(r"[\w.:/@+-]+", value):
        return value
    return _ENCODE(value)


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if log_format == "text" else JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("gunicorn.error", "werkzeug"):  # their own handlers would write their own formats
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class RateLimited:
    """At most one line per key every `interval` seconds; the next line says how many were held back.

    A misconfigured client retries many times a second: one line a minute per reason tells the operator as much.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, extra: dict[str, Any]) -> bool:
        """Log unless `key` was logged less than `interval` ago; True when logged."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        self.logger.warning(message, extra={**extra, "reason": key, "suppressedSinceLast": held})
        return True
