"""The key and group-version history, kept in the state file so a restart still knows the key clients hold."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from sepm_exporter.judge import history as history_module
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import GroupCopy
from sepm_exporter.judge.problems import FileProblem
from sepm_exporter.runtime.problem_log import ProblemLog
from sepm_exporter.sepm.reasons import Reason
from sepm_exporter.sources.inventory import Inventory

log = logging.getLogger("sepm_exporter")

OWNER = ("state",)


class HistoryStore:
    """Owns `history` and its file: loaded at start, saved when a record changes, set aside when unusable."""

    def __init__(self, state_file: Path | None, servers: Iterable[str], problems: ProblemLog) -> None:
        self.state_file = state_file
        self.problems = problems
        self.history = History()
        self.ok = True  # sepm_exporter_state_file_ok
        if state_file is not None:
            recovered = history_module.recover(state_file)
            self.history = recovered.history
            if recovered.problem is not None:
                self._set_aside(state_file, recovered.problem, recovered.restored_from)
            history_module.prune(self.history, servers)

    def record_keys(self, inventory: Inventory, now: float) -> bool:
        """Each server certificate's key as now on disk; True when a record changed (the file needs saving)."""
        dirty = False
        for name, server in inventory.servers.items():
            observed = server.server_certificate
            if observed is not None and observed.facts is not None:
                before = self.history.servers.get(name)
                before_key = (before.current, before.seen_at) if before is not None else None
                if history_module.record_key(self.history, name, observed.facts.leaf, now):
                    log.warning("server key changed", extra={"server": name, "file": observed.label})
                entry = self.history.servers[name]
                dirty |= (entry.current, entry.seen_at) != before_key
        return dirty

    def record_group_versions(self, copies: Mapping[str, list[GroupCopy]]) -> bool:
        """Every group file version seen, with when it was first seen (a heartbeat counts from then)."""
        dirty = False
        for group_id, held in copies.items():
            for copy in held:
                dirty |= history_module.record_group_version(self.history, group_id, copy.facts.canonical_sha256, copy.mtime)
        return dirty

    def remembered_keys(self) -> tuple[dict[str, str], dict[str, str]]:
        """(server -> current key, server -> previous key), as the history holds them."""
        servers = self.history.servers.items()
        current = {name: h.current.public_key_sha256 for name, h in servers if h.current}
        previous = {name: h.previous.public_key_sha256 for name, h in servers if h.previous}
        return current, previous

    def save(self) -> None:
        if self.state_file is None:
            return
        try:
            history_module.save(self.state_file, self.history)
            self.ok = True
            if self.problems.has(OWNER):
                self.problems.update(OWNER, [])
        except OSError as exc:
            self.ok = False
            log.error("state file not saved", extra={"file": str(self.state_file), "detail": exc.strerror or type(exc).__name__})

    def _set_aside(self, path: Path, problem: str, restored_from: Path | None) -> None:
        """A state file that cannot be used is kept as `<name>.bad` (it may come from a newer version;
        older ones as `.bad.1`, `.bad.2`) and reported as a `bad_state` file error until a good one has
        been written in its place. The key history goes on from `.previous` when that one is good."""
        self.ok = False
        then = f"key history restored from {restored_from.name}" if restored_from else "key history starts over"
        try:
            aside = history_module.set_aside(path)
            detail = f"{problem}; kept as {aside.name}, {then}"
        except OSError as exc:
            detail = f"{problem}; could not be set aside ({exc.strerror or type(exc).__name__})"
        self.problems.update(OWNER, [FileProblem("", "", str(path), Reason.BAD_STATE.value, detail)])
