"""One finding and its severity: the vocabulary of the verdict table (judge.findings) and of the areas
that add to it (judge.served), in a module of its own so that neither imports the other to speak it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    """Ordered so that max() gives the worst."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class Finding:
    """One line of the report: what `check`, `check --format json` and the landing page show.

    `alert` names the shipped alert rule this finding mirrors (its runbook is
    `docs/runbooks/<alert>.md`); `since` is when the condition began (Unix time, None when not
    known); `clients` are the clients affected, for subjects that strand or leave clients behind;
    `fix` is the concrete remedy where the KB gives one.
    """

    severity: Severity
    subject: str  # "server SEPM1", "group <id>", "client WS-0001", "file ..."
    message: str
    alert: str = ""
    since: float | None = None
    clients: tuple[str, ...] = ()
    fix: str = ""
