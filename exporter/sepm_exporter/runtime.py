"""One exporter run: scan, remember, derive, render; thread-safe so a scrape only reads bytes."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from sepm_exporter.judge import history as history_module
from sepm_exporter.judge.clients import ClientVerdict, GroupIndex, build_index, classify, group_counts
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import current_server_keys, group_copies, replica_mismatch, server_key_match
from sepm_exporter.metrics.family import Sample
from sepm_exporter.metrics.rendered import Rendered, client_chunks
from sepm_exporter.metrics.samples import (
    SERVER_FAMILIES,
    Derived,
    Row,
    SelfStats,
    client_failing,
    group_count_samples,
    self_families,
    server_failing,
    server_families,
    with_contributions,
)
from sepm_exporter.sepm.reasons import Reason
from sepm_exporter.settings.config import Config
from sepm_exporter.sources.scanner import Scanner

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
        self.events: dict[str, int] = {}
        self.errors_total: dict[str, int] = {}
        self._problems: dict[tuple[str, ...], list[Row]] = {}
        if config.state_file is not None:
            self.history, problem = history_module.load(config.state_file)
            if problem is not None:
                self._set_aside(config.state_file, problem)
        self.scan_duration = 0.0
        self.last_scan = 0.0
        self.ready = False
        self.derived = Derived({}, {}, {}, {})
        self.rendered = Rendered(self._chunks)
        self._index: GroupIndex | None = None
        self._key_set: frozenset[str] = frozenset()
        self._counts: dict[tuple[str, str], int] = {}  # (group, state) -> clients, one verdict at a time
        self._canonical: dict[str, str] = {}  # client -> canonical hash of its file
        self._by_canonical: dict[str, set[str]] = {}  # canonical hash -> clients holding it
        self._verdict_pool: dict[ClientVerdict, ClientVerdict] = {}
        self._verdict_memo: dict[tuple[str, frozenset[str]], ClientVerdict] = {}  # valid for one index
        self._server_samples: dict[str, list[Sample]] = {}  # the file side's own samples of each server family
        self._contributed: dict[str, dict[str, list[Sample]]] = {}  # family -> source -> samples added to it

    @property
    def exposition(self) -> bytes:
        """The whole text (one-shot commands, tests); scrapes send `exposition_parts` instead."""
        return b"".join(self.exposition_parts())

    def exposition_parts(self) -> list[bytes]:
        with self.lock:
            return self.rendered.parts()

    def exposition_gzip_parts(self, tail: bytes = b"") -> list[bytes]:
        """The exposition and `tail` (the process metrics) as one gzip stream, in parts."""
        with self.lock:
            return self.rendered.gzip_parts(tail)

    def publish(self, families: Mapping[str, list[Sample]]) -> None:
        """Swap in whole families computed elsewhere (a background source: the REST API, TLS probes).

        The caller computes its samples outside any lock; this only renders and swaps them, so a
        scrape never waits for a network poll.
        """
        with self.lock:
            for name, found in families.items():
                self.rendered.set_family(name, found)

    def add_server_samples(self, source: str, families: Mapping[str, list[Sample]]) -> None:
        """Samples a background source adds to file-side families (see `samples.with_contributions`):
        replaces what `source` added before to each family named."""
        with self.lock:
            for name, found in families.items():
                if name not in SERVER_FAMILIES:
                    raise ValueError(f"{name} is not a file-side server family")
                by_source = self._contributed.setdefault(name, {})
                if found:
                    by_source[source] = list(found)
                else:
                    by_source.pop(source, None)
                self.rendered.set_family(name, with_contributions(self._server_samples.get(name, []), by_source))

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
        """Re-derive and re-render what changed since the last refresh.

        Server-side changes (certificates, group files) re-derive the groups, O(groups), and re-judge
        only the clients whose file's canonical hash they touch; a key change re-judges every
        client; a client's change re-judges and re-renders that client alone.
        """
        with self.lock:
            now = self.clock()
            inventory = self.scanner.inventory
            changes = self.scanner.take_changes()
            dirty = self._record_keys(now)
            remembered = {name: h.current.public_key_sha256 for name, h in self.history.servers.items() if h.current}
            keys = current_server_keys(inventory, remembered)
            key_set = frozenset(keys.values())
            rejudge = set(changes.clients)
            if changes.servers or key_set != self._key_set or self._index is None:
                copies = group_copies(inventory)
                for group_id, held in copies.items():
                    for copy in held:
                        dirty |= history_module.record_group_version(
                            self.history, group_id, copy.facts.canonical_sha256, copy.mtime
                        )
                index = build_index(copies, self.history.groups)
                for canonical in index.changed(self._index):
                    rejudge |= self._by_canonical.get(canonical, set())
                if key_set != self._key_set:
                    rejudge |= set(inventory.clients) | set(self.derived.verdicts)
                self._index, self._key_set = index, key_set
                self._verdict_memo = {}
                self.derived = Derived(replica_mismatch(copies), server_key_match(inventory, keys),
                                       self.derived.verdicts, self.derived.group_counts)
                for name, found in server_families(inventory, self.history, self.derived).items():
                    self._server_samples[name] = found
                    self.rendered.set_family(name, with_contributions(found, self._contributed.get(name, {})))
                self._set_problems(("servers",), server_failing(inventory))
            for name in rejudge:
                self._judge(name)
            if rejudge or changes.servers:
                counts = group_counts(self._counts, self._index.newest)
                self.derived.group_counts.clear()
                self.derived.group_counts.update(counts)
                self.rendered.set_family("sepm_group_clients", group_count_samples(counts))
            if dirty:
                self._save_history()
            self._render_self()

    def _chunks(self, name: str) -> tuple[bytes, ...]:
        return client_chunks(name, self.scanner.inventory.clients[name], self.derived.verdicts.get(name))

    def _record_keys(self, now: float) -> bool:
        dirty = False
        for name, server in self.scanner.inventory.servers.items():
            observed = server.server_certificate
            if observed is not None and observed.facts is not None:
                before = self.history.servers.get(name)
                before_key = before.current if before is not None else None
                if history_module.record_key(self.history, name, observed.facts.leaf, now):
                    log.warning("server key changed", extra={"server": name, "file": observed.label})
                dirty |= self.history.servers[name].current != before_key
        return dirty

    def _judge(self, name: str) -> None:
        """One client: its verdict, its place in the indexes and counts, its rendered chunk, its problems."""
        inventory = self.scanner.inventory
        verdicts = self.derived.verdicts
        old = verdicts.pop(name, None)
        if old is not None:
            self._counts[(old.group_id, old.status.value)] -= 1
        old_canonical = self._canonical.pop(name, None)
        if old_canonical is not None:
            holders = self._by_canonical[old_canonical]
            holders.discard(name)
            if not holders:
                del self._by_canonical[old_canonical]
        client = inventory.clients.get(name)
        verdict = None
        if client is not None and client.sylink.facts is not None and self._index is not None:
            facts = client.sylink.facts
            memo_key = (facts.canonical_sha256, facts.key_digests)
            verdict = self._verdict_memo.get(memo_key)
            if verdict is None:  # clients with the same file get the same verdict: judge the file once
                verdict = classify(facts.canonical_sha256, facts.key_digests, self._index, self._key_set)
                verdict = self._verdict_memo[memo_key] = self._verdict_pool.setdefault(verdict, verdict)
            verdicts[name] = verdict
            key = (verdict.group_id, verdict.status.value)
            self._counts[key] = self._counts.get(key, 0) + 1
            self._canonical[name] = facts.canonical_sha256
            self._by_canonical.setdefault(facts.canonical_sha256, set()).add(name)
        if client is None or client.sylink.facts is None:
            self.rendered.drop_client(name)
        else:
            self.rendered.touch_client(name)
        observed = client.sylink if client is not None else None
        owner = ("client", name)
        if (owner in self._problems or name in inventory.duplicates
                or (observed is not None and (observed.reason is not None or (observed.facts is not None and observed.facts.problems)))):
            self._set_problems(owner, client_failing(inventory, name))

    def _set_problems(self, owner: tuple[str, ...], rows: list[Row]) -> None:
        """Log a problem once when it starts, once when it clears; count starts by reason."""
        before = self._problems.get(owner, [])
        if rows == before:
            return
        old = {row[:4] for row in before}
        new = {row[:4] for row in rows}
        for server, client, file, reason, detail in rows:
            if (server, client, file, reason) not in old:
                self.errors_total[reason] = self.errors_total.get(reason, 0) + 1
                log.warning("file problem", extra={"server": server, "client": client, "file": file, "reason": reason, "detail": detail})
        for server, client, file, reason in old - new:
            log.info("file problem cleared", extra={"server": server, "client": client, "file": file, "reason": reason})
        if rows:
            self._problems[owner] = rows
        else:
            self._problems.pop(owner, None)

    def _render_self(self) -> None:
        rows = [row for found in self._problems.values() for row in found]
        stats = SelfStats(self.scan_duration, self.last_scan, dict(self.events), dict(self.errors_total), self.state_file_ok)
        for name, found in self_families(self.scanner.inventory, stats, rows).items():
            self.rendered.set_family(name, found)

    def _set_aside(self, path: Path, problem: str) -> None:
        """A state file that cannot be used is kept as `<name>.bad` (it may come from a newer version) and
        reported as a `bad_state` file error until a good one has been written in its place."""
        self.state_file_ok = False
        aside = path.with_name(path.name + ".bad")
        try:
            os.replace(path, aside)
            detail = f"{problem}; kept as {aside.name}, key history starts over"
        except OSError as exc:
            detail = f"{problem}; could not be set aside ({exc.strerror or type(exc).__name__})"
        self._set_problems(("state",), [("", "", str(path), Reason.BAD_STATE.value, detail)])

    def _save_history(self) -> None:
        if self.config.state_file is None:
            return
        try:
            history_module.save(self.config.state_file, self.history)
            self.state_file_ok = True
            if ("state",) in self._problems:
                self._set_problems(("state",), [])
        except OSError as exc:
            self.state_file_ok = False
            log.error("state file not saved", extra={"file": str(self.config.state_file), "detail": exc.strerror or type(exc).__name__})

    def state_path(self) -> Path | None:
        return self.config.state_file
