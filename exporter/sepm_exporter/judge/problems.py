"""Which watched files fail now, and why: one named row per problem, for the metric, the log and the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sepm_exporter.sources.inventory import Inventory, Observed


@dataclass(frozen=True)
class FileProblem:
    """One failing file (or a failing part of one); `detail` is for people, never a label."""

    server: str
    client: str
    file: str
    reason: str
    detail: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes it the same problem from one scan to the next (the detail may vary)."""
        return (self.server, self.client, self.file, self.reason)


def _rows(server: str, client: str, observed: Observed[Any]) -> list[FileProblem]:
    rows: list[FileProblem] = []
    if observed.reason is not None:
        rows.append(FileProblem(server, client, observed.label, observed.reason.value, observed.detail))
    for problem in getattr(observed.facts, "problems", ()):
        rows.append(FileProblem(server, client, observed.label, problem.reason.value, problem.detail))
    return rows


def server_failing(inventory: Inventory) -> list[FileProblem]:
    """Every problem of every server file (certificates, group files, stray folders)."""
    rows: list[FileProblem] = []
    for name, server in inventory.servers.items():
        for certificate in server.certificates.values():
            rows += _rows(name, "", certificate)
        for files in server.groups.values():
            rows += _rows(name, "", files.sylink)
            if files.index2 is not None:
                rows += _rows(name, "", files.index2)
        for stray in server.stray.values():
            rows += _rows(name, "", stray)
    return rows


def client_failing(inventory: Inventory, name: str) -> list[FileProblem]:
    """One client's problems: its own file, and a second file that claims the same name."""
    rows: list[FileProblem] = []
    client = inventory.clients.get(name)
    if client is not None:
        rows += _rows("", name, client.sylink)
    duplicate = inventory.duplicates.get(name)
    if duplicate is not None:
        rows += _rows("", name, duplicate)
    return rows


def failing(inventory: Inventory) -> list[FileProblem]:
    """Every problem, partial problems included (the report, the landing page)."""
    rows = server_failing(inventory)
    for name in dict.fromkeys([*inventory.clients, *inventory.duplicates]):
        rows += client_failing(inventory, name)
    return rows
