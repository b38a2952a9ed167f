"""Application logs as text or JSON lines (``LOG_FORMAT``), each line of a request carrying its request id.

Text: ``2026-02-21T10:00:01.123Z INFO cachegate.chat [3f2a…] message``.
JSON: ``{"ts": "...", "level": "INFO", "logger": "cachegate.chat", "request_id": "3f2a…", "message": "..."}``
plus ``exc_info`` when there is a traceback and any ``extra={...}`` fields given to the call.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

from proxy.http.context import RequestIdFilter
from proxy.settings import Settings

# Attributes every LogRecord has; anything else was passed with ``extra=`` and goes into the JSON line.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id",
                                                                             "taskName"}


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (f"{_timestamp(record)} {record.levelname} {record.name} [{getattr(record, 'request_id', '-')}] "
                f"{record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname, "logger": record.name,
                               "request_id": getattr(record, "request_id", "-"), "message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every log record (cachegate's, uvicorn's, libraries') through one handler in the chosen format."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(settings.log_format, stream)]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    if settings.debug_upstream:
        logging.getLogger("cachegate.upstream.debug").setLevel(logging.DEBUG)
