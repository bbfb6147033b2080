"""The failing files the exporter knows of now, by owner: logged once when a problem starts, once when it clears."""

from __future__ import annotations

import logging

from sepm_exporter.judge.problems import FileProblem

log = logging.getLogger("sepm_exporter")

Owner = tuple[str, ...]  # ("servers",), ("client", NAME), ("state",)


class ProblemLog:
    """One writer (the exporter's, under its lock); `errors_total` counts starts by reason for the self-metrics."""

    def __init__(self) -> None:
        self._by_owner: dict[Owner, list[FileProblem]] = {}
        self.errors_total: dict[str, int] = {}

    def update(self, owner: Owner, rows: list[FileProblem]) -> None:
        """This owner's problems now: a new one is counted and logged, a gone one logged as cleared."""
        before = self._by_owner.get(owner, [])
        if rows == before:
            return
        old = {row.key for row in before}
        new = {row.key for row in rows}
        for row in rows:
            if row.key not in old:
                self.errors_total[row.reason] = self.errors_total.get(row.reason, 0) + 1
                log.warning("file problem", extra={"server": row.server, "client": row.client, "file": row.file,
                                                   "reason": row.reason, "detail": row.detail})
        for server, client, file, reason in old - new:
            log.info("file problem cleared", extra={"server": server, "client": client, "file": file, "reason": reason})
        if rows:
            self._by_owner[owner] = rows
        else:
            self._by_owner.pop(owner, None)

    def has(self, owner: Owner) -> bool:
        return owner in self._by_owner

    def clients(self) -> set[str]:
        """Clients that have problems now: they are looked at again when they are re-judged."""
        return {owner[1] for owner in self._by_owner if owner[0] == "client"}

    def rows(self) -> list[FileProblem]:
        return [row for found in self._by_owner.values() for row in found]
