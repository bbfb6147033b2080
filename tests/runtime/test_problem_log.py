"""The problem log: a problem counted and logged once when it starts, once when it clears."""

from __future__ import annotations

import logging

import pytest

from sepm_exporter.judge.problems import FileProblem
from sepm_exporter.runtime.problem_log import ProblemLog


def test_a_problem_is_counted_once_and_its_clearing_logged(caplog: pytest.LogCaptureFixture) -> None:
    log = ProblemLog()
    row = FileProblem("SEPM1", "", "apache/conf/ssl/server.crt", "bad_certificate", "not PEM")
    with caplog.at_level(logging.INFO, logger="sepm_exporter"):
        log.update(("servers",), [row])
        log.update(("servers",), [FileProblem(*row.key, "detail varies")])  # same problem, new words
        log.update(("servers",), [])
    assert log.errors_total == {"bad_certificate": 1}
    assert [r.getMessage() for r in caplog.records] == ["file problem", "file problem cleared"]
    assert log.rows() == [] and not log.has(("servers",))


def test_clients_with_problems_are_named() -> None:
    log = ProblemLog()
    log.update(("client", "WS-1"), [FileProblem("", "WS-1", "WS-1/SyLink.xml", "parse_error", "x")])
    log.update(("servers",), [FileProblem("SEPM1", "", "f", "unreadable", "x")])
    assert log.clients() == {"WS-1"} and len(log.rows()) == 2
