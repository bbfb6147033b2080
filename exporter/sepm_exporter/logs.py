"""Structured logs in logfmt or JSON: one line per event, with the file and reason as fields."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "level": record.levelname.lower(),
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and value not in ("", None):
            fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:  # `log.exception`: what failed and where, on the same line
        fields["error"] = record.exc_info[0].__name__
        fields["traceback"] = _TRACEBACK.formatException(record.exc_info)
    return fields


_TRACEBACK = logging.Formatter()


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-._/:@+" for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """`ts=... level=warn msg="file problem" file=... reason=...`, as Prometheus' own tools log."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


def setup(level: str = "info", fmt: str = "logfmt") -> None:
    """Configure the package logger on stderr; idempotent."""
    logger = logging.getLogger("sepm_exporter")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
