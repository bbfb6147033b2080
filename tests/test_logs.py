"""The log formatters keep what `log.exception` adds: the error's type and its traceback, on the one line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sepm_exporter import logs


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_an_exception_logs_its_type_and_traceback_on_one_line(fmt: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else logs.LogfmtFormatter())
    logger = logging.getLogger("sepm_exporter.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            {}["missing"]
        except KeyError:
            logger.exception("api poll crashed", extra={"server": "SEPM1"})
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    if fmt == "json":
        fields = json.loads(lines[0])
        assert fields["error"] == "KeyError" and fields["server"] == "SEPM1"
        assert fields["traceback"].startswith("Traceback (most recent call last):")
        assert "test_logs.py" in fields["traceback"] and fields["traceback"].rstrip().endswith("KeyError: 'missing'")
    else:
        assert " error=KeyError " in lines[0] and 'traceback="Traceback (most recent call last):\\n' in lines[0]
        assert "test_logs.py" in lines[0]


def test_a_line_without_an_exception_has_no_error_fields() -> None:
    record = logging.LogRecord("sepm_exporter", logging.INFO, __file__, 1, "fine", (), None)
    assert "error" not in logs.LogfmtFormatter().format(record) and "traceback" not in logs.JsonFormatter().format(record)
