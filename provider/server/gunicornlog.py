"""gunicorn's own lines (start, workers booting and exiting, signals) in the provider's log format."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger


def _provider_style(record: logging.LogRecord) -> bool:
    record.name = "gunicorn"  # its error log carries every lifecycle line, errors or not
    # gunicorn knows nothing of the TLS the front door does on its sockets, and calls them http://.
    if isinstance(record.msg, str) and record.msg.startswith("Listening at") and record.args:
        record.args = tuple(a.replace("http://", "https://") if isinstance(a, str) else a
                            for a in (record.args if isinstance(record.args, tuple) else (record.args,)))
    return True


class ProviderLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with its handlers removed: its records go to the root logger's handler."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.handlers[:] = []
            log.propagate = True
        if _provider_style not in self.error_log.filters:
            self.error_log.addFilter(_provider_style)
