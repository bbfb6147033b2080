"""One exporter run: scan, remember, derive, render; thread-safe so a scrape only reads bytes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sepm_exporter import history as history_module
from sepm_exporter.clients import classify_all, group_counts
from sepm_exporter.config import Config
from sepm_exporter.exposition import render
from sepm_exporter.history import History
from sepm_exporter.parity import current_server_keys, group_copies, replica_mismatch, server_key_match
from sepm_exporter.samples import Derived, SelfStats, failing, families
from sepm_exporter.scanner import Scanner

log = logging.getLogger("sepm_exporter")

Clock = Callable[[], float]


class Exporter:
    """Owns the inventory and history; `exposition` is always a complete, consistent rendering."""

    def __init__(self, config: Config, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.scanner = Scanner(config)
        self.lock = threading.RLock()
        self.history = History()
        self.state_file_ok = True
        if config.state_file is not None:
            self.history, problem = history_module.load(config.state_file)
            if problem is not None:
                self.state_file_ok = False
                log.warning("state file replaced", extra={"file": str(config.state_file), "reason": "bad_state", "detail": problem})
        self.events: dict[str, int] = {}
        self.errors_total: dict[str, int] = {}
        self.scan_duration = 0.0
        self.last_scan = 0.0
        self.ready = False
        self.derived = Derived({}, {}, {}, {})
        self._known_problems: set[tuple[str, str, str, str]] = set()
        self._exposition = b""

    @property
    def exposition(self) -> bytes:
        with self.lock:
            return self._exposition

    def count_event(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.events[kind] = self.events.get(kind, 0) + n

    def full_scan(self) -> None:
        """The reconciliation scan: everything, cheap where nothing changed."""
        with self.lock:
            started = time.perf_counter()
            before = self.scanner.files_read
            self.scanner.scan_all()
            changed = self.scanner.files_read - before
            if self.ready and changed:
                self.count_event("reconcile", changed)
            self.scan_duration = time.perf_counter() - started
            self.last_scan = self.clock()
            self.refresh()
            self.ready = True

    def refresh(self) -> None:
        """Re-derive and re-render after any change to the inventory."""
        with self.lock:
            now = self.clock()
            inventory = self.scanner.inventory
            dirty = False
            for name, server in inventory.servers.items():
                observed = server.server_certificate
                if observed is not None and observed.facts is not None:
                    before = self.history.servers.get(name)
                    before_key = before.current if before is not None else None
                    if history_module.record_key(self.history, name, observed.facts.leaf, now):
                        log.warning("server key changed", extra={"server": name, "file": observed.label})
                    dirty |= self.history.servers[name].current != before_key
            copies = group_copies(inventory)
            for group_id, held in copies.items():
                for copy in held:
                    dirty |= history_module.record_group_version(
                        self.history, group_id, copy.facts.canonical_sha256, copy.mtime
                    )
            remembered = {name: h.current.public_key_sha256 for name, h in self.history.servers.items() if h.current}
            keys = current_server_keys(inventory, remembered)
            verdicts = classify_all(inventory, copies, self.history.groups, set(keys.values()))
            self.derived = Derived(
                replica_mismatch=replica_mismatch(copies),
                key_match=server_key_match(inventory, keys),
                verdicts=verdicts,
                group_counts=group_counts(verdicts, set(copies)),
            )
            self._log_problems()
            if dirty:
                self._save_history()
            stats = SelfStats(self.scan_duration, self.last_scan, dict(self.events), dict(self.errors_total), self.state_file_ok)
            self._exposition = render(families(inventory, self.history, self.derived, stats))

    def _log_problems(self) -> None:
        """Once per problem, not once per scan; and a line when it is fixed."""
        rows = failing(self.scanner.inventory)
        now_failing = {(server, client, file, reason) for server, client, file, reason, _ in rows}
        for server, client, file, reason, detail in rows:
            if (server, client, file, reason) not in self._known_problems:
                self.errors_total[reason] = self.errors_total.get(reason, 0) + 1
                log.warning("file problem", extra={"server": server, "client": client, "file": file, "reason": reason, "detail": detail})
        for server, client, file, reason in self._known_problems - now_failing:
            log.info("file problem cleared", extra={"server": server, "client": client, "file": file, "reason": reason})
        self._known_problems = now_failing

    def _save_history(self) -> None:
        if self.config.state_file is None:
            return
        try:
            history_module.save(self.config.state_file, self.history)
            self.state_file_ok = True
        except OSError as exc:
            self.state_file_ok = False
            log.error("state file not saved", extra={"file": str(self.config.state_file), "detail": exc.strerror or type(exc).__name__})

    def state_path(self) -> Path | None:
        return self.config.state_file
