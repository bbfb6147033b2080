"""One exporter run: scan, remember, derive, render.

One writer at a time (scans, re-reads, refreshes, background publishes) holds `_write`; readers
(scrapes, the landing page, `check`) take no lock at all: they read a frozen `Published`
exposition and a frozen `Report`, each swapped in by reference when the writer is done. So a
scrape never waits for a scan, however slow the share.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sepm_exporter.judge import history as history_module
from sepm_exporter.judge import renewal, served
from sepm_exporter.judge.clients import (
    ClientVerdict,
    GroupIndex,
    TrustBasis,
    build_index,
    classify,
    embedded,
    group_counts,
    trust_basis,
)
from sepm_exporter.judge.derived import Derived
from sepm_exporter.judge.findings import Finding, ServerLine, findings, server_lines, with_verdict
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import (
    current_server_keys,
    group_copies,
    group_names,
    replica_mismatch,
    server_key_match,
)
from sepm_exporter.judge.problems import FileProblem, client_failing, server_failing
from sepm_exporter.judge.remediation import Row, StrandedClient, rows, stranded
from sepm_exporter.judge.renewal import RenewalPlan, WhatIf
from sepm_exporter.metrics import clients as client_metrics
from sepm_exporter.metrics import exporter as self_metrics
from sepm_exporter.metrics import groups as group_metrics
from sepm_exporter.metrics import keystore as keystore_metrics
from sepm_exporter.metrics import renewal as renewal_metrics
from sepm_exporter.metrics import serverlist as serverlist_metrics
from sepm_exporter.metrics import servers as server_metrics
from sepm_exporter.metrics.family import Sample
from sepm_exporter.metrics.rendered import Published, Rendered
from sepm_exporter.sepm.reasons import Reason
from sepm_exporter.sepm.sylink import SyLinkFacts
from sepm_exporter.settings.config import Config
from sepm_exporter.sources.inventory import Inventory
from sepm_exporter.sources.scanner import Scanner, Unit

log = logging.getLogger("sepm_exporter")

Clock = Callable[[], float]

SERVER_FAMILIES = frozenset(f.name for f in server_metrics.FAMILIES)  # what a background source may add to
REPORT_MAX_AGE = 5.0  # seconds a landing page or `check` may show before findings are made again


@dataclass(frozen=True)
class Root:
    """A watched root as the last scan saw it."""

    kind: str  # "server NAME" or "collection"
    path: str
    up: bool


@dataclass(frozen=True)
class Report:
    """Everything the landing page and `check` show, as of `at`: made under the writer lock, read without one."""

    at: float
    servers: list[ServerLine]
    findings: list[Finding]  # worst first, background sources' included
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (group, group set, state) -> clients
    rows: list[Row] = field(default_factory=list)  # one per subject the on-call acts on
    stranded: list[StrandedClient] = field(default_factory=list)
    replica_mismatch: dict[str, bool] = field(default_factory=dict)
    key_match: dict[tuple[str, str], bool] = field(default_factory=dict)
    group_names: dict[str, str] = field(default_factory=dict)  # group ID -> PreferredGroup of its file
    key_changed: dict[str, float] = field(default_factory=dict)  # server -> when its key last changed
    roots: list[Root] = field(default_factory=list)
    plan: RenewalPlan | None = None  # what a new-key renewal of each server would strand, and the safe order
    last_scan: float = 0.0
    scan_duration: float = 0.0


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic collector off for one scan: a scan builds records that hold no cycles, and the
    collector would walk the young heap hundreds of times to find nothing (0.3-0.5 s of a
    100,000-client cold scan, measured); it runs again, as it was, when the scan ends."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class Exporter:
    """Owns the inventory and history; `exposition` is always a complete, consistent rendering."""

    def __init__(self, config: Config, clock: Clock = time.time) -> None:
        self.config = config
        self.config_source = ""  # where the config came from, for the landing page
        self.clock = clock
        self.scanner = Scanner(config)
        self._write = threading.RLock()  # one writer: scans, re-reads, refreshes, publishes
        self._counters = threading.Lock()  # event counters, bumped from watcher threads
        self.history = History()
        self.state_file_ok = True
        self.events: dict[str, int] = {}
        self.errors_total: dict[str, int] = {}
        self._problems: dict[tuple[str, ...], list[FileProblem]] = {}
        if config.state_file is not None:
            self.history, problem = history_module.load(config.state_file)
            if problem is not None:
                self._set_aside(config.state_file, problem)
            history_module.prune(self.history, (server.name for server in config.servers))
        self.scan_duration = 0.0
        self.last_scan = 0.0
        self.ready = False  # /-/ready: set once the first scan's results are published
        self._scanned = False  # sepm_exporter_ready: set just before they are rendered
        self.derived = Derived()
        self._own: dict[str, list[Sample]] = {}  # each family's samples from its own area
        self._contributed: dict[str, dict[str, list[Sample]]] = {}  # family -> background source -> samples added
        self.rendered = Rendered(self._chunks)
        self._render_self()
        self._published: Published = self.rendered.publish()
        self._report: Report | None = None
        self._report_stale = True
        self._source_findings: dict[str, Callable[[Inventory], list[Finding]]] = {}  # background source -> its findings
        self.publish_seconds = 0.0  # the last rendering and compression of what changed (benchmarks read it)
        self._index: GroupIndex | None = None
        self._basis = TrustBasis()
        self._counts: dict[tuple[str, str, str], int] = {}  # (group, group set, state) -> clients, one verdict at a time
        self._canonical: dict[str, str] = {}  # client -> canonical hash of its file
        self._by_canonical: dict[str, set[str]] = {}  # canonical hash -> clients holding it
        self._verdict_pool: dict[ClientVerdict, ClientVerdict] = {}
        self._pool_limit = 1024  # the pool only interns: rebuilt from live verdicts when it doubles
        self._verdict_memo: dict[tuple[str, frozenset[str]], ClientVerdict] = {}  # valid for one index

    @property
    def exposition(self) -> bytes:
        """The whole text (one-shot commands, tests); scrapes send `exposition_parts` instead."""
        return b"".join(self.exposition_parts())

    def exposition_parts(self) -> list[bytes]:
        return list(self._published.parts)

    def exposition_gzip_parts(self, tail: bytes = b"") -> list[bytes]:
        """The exposition and `tail` (the process metrics) as one gzip stream, in parts."""
        return self._published.gzip_parts(tail)

    def report(self) -> Report:
        """Findings for the landing page and `check`, never older than REPORT_MAX_AGE while idle.

        Made here, on demand, after a refresh has changed the state or when it has aged (expiry
        days, alert windows move with the clock), and only if no scan holds the writer lock at that
        instant: a reader never waits for a scan, it gets the last report instead.
        """
        report = self._report
        aged = report is None or self._report_stale or self.clock() - report.at > REPORT_MAX_AGE
        if aged and self._write.acquire(blocking=False):
            try:
                report = self._make_report()
            finally:
                self._write.release()
        return report if report is not None else Report(self.clock(), [], [])

    def _make_report(self) -> Report:
        self._report_stale = False
        now = self.clock()
        inventory = self.scanner.inventory
        derived = self.derived
        found = findings(inventory, self.history, derived, now)
        for source in sorted(self._source_findings):
            found += [with_verdict(f) for f in self._source_findings[source](inventory)]
        found.sort(key=lambda f: -f.severity)
        roots = [Root(f"server {name}", str(s.config.root), s.root_up) for name, s in inventory.servers.items()]
        roots += [Root("collection", str(c.path), c.root_up) for c in inventory.collections.values()]
        self._report = Report(
            at=now, servers=server_lines(inventory, now), findings=found, counts=dict(derived.group_counts),
            rows=rows(found, self.history, inventory), stranded=stranded(inventory, derived.verdicts),
            replica_mismatch=dict(derived.replica_mismatch), key_match=dict(derived.key_match),
            group_names=group_names(group_copies(inventory)),
            key_changed={name: h.changed_at for name, h in self.history.servers.items() if h.changed_at is not None},
            roots=roots, plan=renewal.plan_for(inventory, self.history, derived.verdicts, self._by_canonical),
            last_scan=self.last_scan, scan_duration=self.scan_duration,
        )
        return self._report

    def renewal_what_if(self, servers: list[str]) -> WhatIf:
        """`check --renewal`: what renewing these servers with a new key now would strand (a writer step)."""
        with self._write:
            held = renewal.holdings_for(self.scanner.inventory, self.history, self.derived.verdicts, self._by_canonical)
            return renewal.what_if(*held, servers)

    def publish(self, families: Mapping[str, list[Sample]], source: str = "",
                findings: Callable[[Inventory], list[Finding]] | None = None) -> None:
        """Swap in whole families computed elsewhere (a background source: the REST API, TLS probes).

        The caller computes its samples outside any lock; this only renders and swaps them, so a
        scrape never waits for a network poll. A `source` may also hand what its last round means
        for the landing page and `check`: `findings` is judged against the inventory when the next
        report is made, so a probe result meets the key on disk at that moment.
        """
        with self._write:
            for name, found in families.items():
                self.rendered.set_family(name, found)
            self._published = self.rendered.publish()
            if source:
                if findings is None:
                    self._source_findings.pop(source, None)
                else:
                    self._source_findings[source] = findings
                self._report_stale = True

    def disk_keys(self) -> dict[str, str]:
        """Each server's key in server.crt now, for the TLS prober's comparison (a writer step: the prober's
        thread may wait for a scan, a scrape never does)."""
        with self._write:
            return served.disk_keys(self.scanner.inventory)

    def count_event(self, kind: str, n: int = 1) -> None:
        with self._counters:
            self.events[kind] = self.events.get(kind, 0) + n

    def full_scan(self, progress: Callable[[int, int], None] | None = None) -> None:
        """The reconciliation scan: everything, cheap where nothing changed; readers go on meanwhile.

        `progress` hears (units done, units found) during this scan only (a terminal's first scan).
        """
        with self._write, _collector_paused():
            started = time.perf_counter()
            before = self.scanner.files_read
            self.scanner.progress = progress
            try:
                self.scanner.scan_all()
            finally:
                self.scanner.progress = None
            changed = self.scanner.files_read - before
            if self.ready and changed:
                self.count_event("reconcile", changed)
            self.scan_duration = time.perf_counter() - started
            self.last_scan = self.clock()
            self._scanned = True
            self.refresh()
            self.ready = True

    def refresh(self) -> None:
        """Re-derive and re-render what changed since the last refresh.

        Server-side changes (certificates, group files) re-derive the groups, O(groups), and re-judge
        only the clients whose file's canonical hash they touch; a key change re-judges every
        client; a client's change re-judges and re-renders that client alone.
        """
        with self._write:
            now = self.clock()
            inventory = self.scanner.inventory
            changes = self.scanner.take_changes()
            dirty = self._record_keys(now)
            remembered = {name: h.current.public_key_sha256 for name, h in self.history.servers.items() if h.current}
            keys = current_server_keys(inventory, remembered)
            previous = {name: h.previous.public_key_sha256 for name, h in self.history.servers.items() if h.previous}
            basis = trust_basis(keys, previous)
            rejudge = set(changes.clients)
            if changes.servers or basis != self._basis or self._index is None:
                copies = group_copies(inventory)
                for group_id, held in copies.items():
                    for copy in held:
                        dirty |= history_module.record_group_version(
                            self.history, group_id, copy.facts.canonical_sha256, copy.mtime
                        )
                index = build_index(copies, self.history.groups)
                for canonical in index.changed(self._index):
                    rejudge |= self._by_canonical.get(canonical, set())
                if basis != self._basis:
                    rejudge |= set(inventory.clients) | set(self.derived.verdicts)
                self._index, self._basis = index, basis
                self._verdict_memo = {}
                if len(self._verdict_pool) > self._pool_limit:  # a bounded pool: verdicts no client holds go
                    self._verdict_pool = {v: v for v in self.derived.verdicts.values()}
                    self._pool_limit = max(1024, 2 * len(self._verdict_pool))
                self.derived.replica_mismatch = replica_mismatch(copies)
                self.derived.key_match = server_key_match(inventory, keys)
                self._set_families(server_metrics.samples(inventory, self.history))
                self._set_families(group_metrics.samples(inventory, self.derived))
                self._set_families(serverlist_metrics.samples(inventory))
                self._set_families(keystore_metrics.samples(inventory))
                self._set_problems(("servers",), server_failing(inventory))
            self._judge(rejudge, self._index)
            if rejudge or changes.servers:
                counts = group_counts(self._counts, self._index.newest)
                self.derived.group_counts = counts
                self._set_families(group_metrics.client_counts(counts))
                self._render_renewal()
            if dirty:
                self._save_history()
            self._render_self()
            started = time.perf_counter()
            self._published = self.rendered.publish()
            self.publish_seconds = time.perf_counter() - started
            self._report_stale = True  # made when someone asks: a poll every second need not judge every second

    def reread(self, units: Iterable[Unit]) -> None:
        """Re-read what the watcher saw change, then refresh: one writer step."""
        with self._write:
            self.scanner.reread(units)
            self.refresh()

    def root_states(self) -> dict[str, tuple[Path, bool]]:
        """Each watched root's path and whether the last scan could read it (the watcher's question)."""
        inventory = self.scanner.inventory
        out = {f"server {name}": (server.config.root, server.root_up) for name, server in inventory.servers.items()}
        out.update({f"client_root {key}": (c.path, c.root_up) for key, c in inventory.collections.items()})
        return out

    def _set_families(self, families: Mapping[str, list[Sample]]) -> None:
        """An area's own samples, followed by what background sources added to the same families."""
        for name, found in families.items():
            self._own[name] = found
            added = self._contributed.get(name)
            self.rendered.set_family(name, [*found, *(s for source in sorted(added) for s in added[source])] if added else found)

    def add_server_samples(self, source: str, families: Mapping[str, list[Sample]]) -> None:
        """Samples a background source adds to the file side's server families (the REST API's database
        certificate in `sepm_certificate_*`); they replace what `source` added before and survive re-scans."""
        with self._write:
            for name, found in families.items():
                if name not in SERVER_FAMILIES:
                    raise ValueError(f"{name} is not a server certificate family")
                by_source = self._contributed.setdefault(name, {})
                if found:
                    by_source[source] = list(found)
                else:
                    by_source.pop(source, None)
            self._set_families({name: self._own.get(name, []) for name in families})
            self._published = self.rendered.publish()

    def _render_renewal(self) -> None:
        """Stranded-if-renewed: per distinct client file, not per client, so it stays cheap at 100,000."""
        found = renewal.plan_for(self.scanner.inventory, self.history, self.derived.verdicts, self._by_canonical, sort=False)
        self._set_families(renewal_metrics.samples(found))

    def _chunks(self, name: str) -> tuple[bytes, ...]:
        return client_metrics.chunks(name, self.scanner.inventory.clients[name], self.derived.verdicts.get(name))

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

    def _judge(self, names: set[str], index: GroupIndex) -> None:
        """These clients: their verdicts, their places in the indexes and counts, their rendered chunks, their problems.

        Clients holding the same parsed file (the parse cache hands them one facts object) are
        judged, counted and indexed together: the benchmark's 100,000 clients are about a thousand
        such bundles, so the per-client work is one lookup and one append.
        """
        inventory = self.scanner.inventory
        clients = inventory.clients
        verdicts = self.derived.verdicts
        counts = self._counts
        by_canonical = self._by_canonical
        canonical_of = self._canonical
        for name in [n for n in names if n in canonical_of or n in verdicts] if (verdicts or canonical_of) else ():
            old = verdicts.pop(name, None)
            if old is not None:
                counts[(old.group_id, old.group_set, old.status.value)] -= 1
            old_canonical = canonical_of.pop(name, None)
            if old_canonical is not None:
                holders = by_canonical[old_canonical]
                holders.discard(name)
                if not holders:
                    del by_canonical[old_canonical]
        bundles: dict[int, tuple[SyLinkFacts, list[str]]] = {}  # id(facts) -> the facts, the clients holding them
        without: list[str] = []  # gone, or no facts: no verdict, no series
        check: set[str] = set()  # whose problems to look at again
        for name in names:
            client = clients.get(name)
            facts = client.sylink.facts if client is not None else None
            if facts is None or client is None:
                without.append(name)
                if client is not None:
                    check.add(name)
                continue
            bundle = bundles.get(id(facts))
            if bundle is None:
                bundles[id(facts)] = (facts, [name])
            else:
                bundle[1].append(name)
            if client.sylink.reason is not None:
                check.add(name)
        for facts, held in bundles.values():
            memo_key = (facts.canonical_sha256, facts.key_digests)
            verdict = self._verdict_memo.get(memo_key)
            if verdict is None:  # clients with the same file get the same verdict: judge the file once
                verdict = classify(facts.canonical_sha256, embedded(facts), index, self._basis)
                verdict = self._verdict_memo[memo_key] = self._verdict_pool.setdefault(verdict, verdict)
            verdicts.update(dict.fromkeys(held, verdict))
            key = (verdict.group_id, verdict.group_set, verdict.status.value)
            counts[key] = counts.get(key, 0) + len(held)
            canonical_of.update(dict.fromkeys(held, facts.canonical_sha256))
            by_canonical.setdefault(facts.canonical_sha256, set()).update(held)
            self.rendered.touch_clients(held)
            if facts.problems:
                check.update(held)
        for name in without:
            self.rendered.drop_client(name)
        if inventory.duplicates:
            check.update(names & inventory.duplicates.keys())
        check.update(owner[1] for owner in self._problems if owner[0] == "client" and owner[1] in names)
        for name in check:
            self._set_problems(("client", name), client_failing(inventory, name))

    def _set_problems(self, owner: tuple[str, ...], rows: list[FileProblem]) -> None:
        """Log a problem once when it starts, once when it clears; count starts by reason."""
        before = self._problems.get(owner, [])
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
            self._problems[owner] = rows
        else:
            self._problems.pop(owner, None)

    def _render_self(self) -> None:
        rows = [row for found in self._problems.values() for row in found]
        with self._counters:
            events = dict(self.events)
        cache = self.scanner.parse_cache
        stats = self_metrics.SelfStats(self._scanned, self.scan_duration, self.last_scan, events, dict(self.errors_total),
                                       self.state_file_ok, dict(self.scanner.root_scans), cache.hits, cache.misses)
        self._set_families(self_metrics.samples(self.scanner.inventory, stats, rows))

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
        self._set_problems(("state",), [FileProblem("", "", str(path), Reason.BAD_STATE.value, detail)])

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

