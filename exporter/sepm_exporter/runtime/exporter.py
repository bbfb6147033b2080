"""One exporter run: scan, remember, judge, publish.

One writer at a time (scans, re-reads, refreshes, background publishes) holds `_write`; readers
(scrapes, the landing page, `check`) take no lock at all: they read a frozen `Published`
exposition and a frozen `Report`, each swapped in by reference when the writer is done. So a
scrape never waits for a scan, however slow the share.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sepm_exporter.judge import renewal, served
from sepm_exporter.judge.api_clients import ApiRecords
from sepm_exporter.judge.clients import build_index, trust_basis
from sepm_exporter.judge.derived import Derived
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import current_server_keys, group_copies, replica_mismatch, server_key_match
from sepm_exporter.judge.problems import client_failing, server_failing
from sepm_exporter.judge.renewal import WhatIf
from sepm_exporter.metrics import api_clients as api_client_metrics
from sepm_exporter.metrics import clients as client_metrics
from sepm_exporter.metrics import exporter as self_metrics
from sepm_exporter.metrics import groups as group_metrics
from sepm_exporter.metrics import keystore as keystore_metrics
from sepm_exporter.metrics import renewal as renewal_metrics
from sepm_exporter.metrics import serverlist as serverlist_metrics
from sepm_exporter.metrics import servers as server_metrics
from sepm_exporter.metrics.client_series import Mode, Selection
from sepm_exporter.metrics.family import Sample
from sepm_exporter.runtime.client_book import ApiEvidence, ClientBook
from sepm_exporter.runtime.collector import collector_paused
from sepm_exporter.runtime.history_store import HistoryStore
from sepm_exporter.runtime.problem_log import ProblemLog
from sepm_exporter.runtime.publisher import Publisher
from sepm_exporter.runtime.report import Report, SourceFindings, State, make_report
from sepm_exporter.settings.config import Config
from sepm_exporter.sources.scanner import Scanner, Unit

Clock = Callable[[], float]

REPORT_MAX_AGE = 5.0  # seconds a landing page or `check` may show before findings are made again


class Exporter:
    """Owns the scanner, the client book, the history and the publisher; `exposition` is always whole."""

    def __init__(self, config: Config, clock: Clock = time.time) -> None:
        self.config = config
        self.config_source = ""  # where the config came from, for the landing page
        self.clock = clock
        self.scanner = Scanner(config)
        self._write = threading.RLock()  # one writer: scans, re-reads, refreshes, publishes
        self._counters = threading.Lock()  # event counters, bumped from watcher threads
        self.events: dict[str, int] = {}
        self.problems = ProblemLog()
        self.store = HistoryStore(config.state_file, (server.name for server in config.servers), self.problems)
        self.book = ClientBook()
        self.api = ApiEvidence()
        self.derived = Derived(verdicts=self.book.verdicts)
        self.scan_duration = 0.0
        self.last_scan = 0.0
        self.last_change = 0.0  # when a refresh last found a file changed, gone or new (the page says so)
        self.ready = False  # /-/ready: set once the first scan's results are published
        self._scanned = False  # sepm_exporter_ready: set just before they are rendered
        self.series_mode = Mode(config.client_series)
        self.publisher = Publisher(self._chunks, Selection(self.series_mode, config.client_series_limit))
        self._render_self()
        self.publisher.publish()
        self._report: Report | None = None
        self._report_stale = True
        self._source_findings: dict[str, SourceFindings] = {}  # background source -> its findings

    @property
    def history(self) -> History:
        """The key and group-version history (the history store's), which findings and the page read."""
        return self.store.history

    @property
    def exposition(self) -> bytes:
        """The whole text (one-shot commands, tests); scrapes send `exposition_parts` instead."""
        return b"".join(self.exposition_parts())

    def exposition_parts(self) -> list[bytes]:
        return list(self.publisher.published.parts)

    def exposition_gzip_parts(self, tail: bytes = b"") -> list[bytes]:
        """The exposition and `tail` (the process metrics) as one gzip stream, in parts."""
        return self.publisher.published.gzip_parts(tail)

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
                self._report_stale = False
                state = State(self.scanner.inventory, self.history, self.derived, self.book.by_canonical,
                              self._source_findings, self.last_scan, self.scan_duration, self.last_change)
                report = self._report = make_report(state, self.clock())
            finally:
                self._write.release()
        return report if report is not None else Report(self.clock(), [], [])

    def renewal_what_if(self, servers: list[str]) -> WhatIf:
        """`check --renewal`: what renewing these servers with a new key now would strand (a writer step)."""
        with self._write:
            held = renewal.holdings_for(self.scanner.inventory, self.history, self.derived.verdicts, self.book.by_canonical,
                                        api=self.derived.api)
            return renewal.what_if(*held, servers)

    def publish(self, families: Mapping[str, list[Sample]], source: str = "",
                findings: SourceFindings | None = None) -> None:
        """Swap in whole families computed elsewhere (a background source: the REST API, TLS probes).

        The caller computes its samples outside any lock; this only renders and swaps them, so a
        scrape never waits for a network poll. A `source` may also hand what its last round means
        for the landing page and `check`: `findings` is judged against the inventory when the next
        report is made, so a probe result meets the key on disk at that moment.
        """
        with self._write:
            self.publisher.replace(families)
            self.publisher.publish()
            if source:
                if findings is None:
                    self._source_findings.pop(source, None)
                else:
                    self._source_findings[source] = findings
                self._report_stale = True

    def add_server_samples(self, source: str, families: Mapping[str, list[Sample]]) -> None:
        """Samples a background source adds to the file side's server families (the REST API's database
        certificate in `sepm_certificate_*`); they replace what `source` added before and survive re-scans."""
        with self._write:
            self.publisher.contribute(source, families)
            self.publisher.publish()

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
        with self._write, collector_paused():
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

    def reread(self, units: Iterable[Unit]) -> None:
        """Re-read what the watcher saw change, then refresh: one writer step."""
        with self._write:
            self.scanner.reread(units)
            self.refresh()

    def refresh(self) -> None:
        """Re-judge and re-render what changed since the last refresh.

        Server-side changes (certificates, group files) re-derive the groups, O(groups), and re-judge
        only the clients whose file's canonical hash they touch; a key change re-judges every
        client; a client's change re-judges and re-renders that client alone.
        """
        with self._write:
            inventory = self.scanner.inventory
            changes = self.scanner.take_changes()
            if changes.clients or changes.servers:
                self.last_change = self.clock()
            dirty = self.store.record_keys(inventory, self.clock())
            remembered, previous = self.store.remembered_keys()
            keys = current_server_keys(inventory, remembered)
            basis = trust_basis(keys, previous)
            rejudge = set(changes.clients)
            basis_changed = basis != self.book.basis
            if changes.servers or self.book.stale_for(basis):
                copies = group_copies(inventory)
                dirty |= self.store.record_group_versions(copies)
                rejudge |= self.book.rebase(build_index(copies, self.history.groups), basis, inventory.clients)
                self.derived.replica_mismatch = replica_mismatch(copies)
                self.derived.key_match = server_key_match(inventory, keys)
                self.publisher.set_families(server_metrics.samples(inventory, self.history))
                self.publisher.set_families(group_metrics.samples(inventory, self.derived))
                self.publisher.set_families(serverlist_metrics.samples(inventory))
                self.publisher.set_families(keystore_metrics.samples(inventory))
                self.problems.update(("servers",), server_failing(inventory))
            self._judge(rejudge)
            api_changed = bool(self.api.records) and (bool(changes.servers) or basis_changed
                                                      or self.api.touches(changes.clients))
            if api_changed:
                self._judge_api()
            if rejudge or changes.servers or api_changed:
                self._render_counts()
            if dirty:
                self.store.save()
            self._render_self()
            self.publisher.publish()
            self._report_stale = True  # made when someone asks: a poll every second need not judge every second

    def api_records(self, records: Iterable[ApiRecords]) -> None:
        """The APIs' last good polls (every computer each lists): judged, counted, named, published.

        Called by the pollers' publisher after any poll, outside a scrape; the judging is per distinct
        (server, group, serial), so 100,000 computers cost one pass of lookups.
        """
        with self._write:
            self.api.records = list(records)
            self.api.names = frozenset(n.casefold() for r in self.api.records for n in r.computers.names)
            if self.api.observe_profiles(self.scanner.inventory, self.history):
                self.store.save()
            self._judge_api()
            self._render_counts()
            self.publisher.publish()
            self._report_stale = True

    def _judge_api(self) -> None:
        judged = self.api.judge(self.scanner.inventory, self.history, self.book.basis, self.clock())
        self.derived.api = judged
        self.publisher.set_families(api_client_metrics.samples(judged, self.config.client_series,
                                                               self.config.client_series_limit))

    def _render_counts(self) -> None:
        """`sepm_group_clients` (both evidences) and the renewal figures, which count the same clients."""
        if self.book.index is not None:
            self.derived.group_counts = self.book.group_counts()
        api = self.derived.api
        self.publisher.set_families(group_metrics.client_counts(self.derived.group_counts, api.all_counts() if api else None))
        self.publisher.set_families(group_metrics.stale_files(self.book.stale))
        self._render_renewal()

    def root_states(self) -> dict[str, tuple[Path, bool]]:
        """Each watched root's path and whether the last scan could read it (the watcher's question)."""
        inventory = self.scanner.inventory
        out = {f"server {name}": (server.config.root, server.root_up) for name, server in inventory.servers.items()}
        out.update({f"client_root {key}": (c.path, c.root_up) for key, c in inventory.collections.items()})
        return out

    def _judge(self, names: set[str]) -> None:
        """These clients judged again: their series re-rendered or dropped, their file problems looked at."""
        inventory = self.scanner.inventory
        judged = self.book.judge(names, inventory.clients)
        self.publisher.clients(judged.touched, judged.dropped)
        check = judged.check
        if inventory.duplicates:
            check.update(names & inventory.duplicates.keys())
        check.update(self.problems.clients() & names)
        for name in check:
            self.problems.update(("client", name), client_failing(inventory, name))

    def _render_renewal(self) -> None:
        """Stranded-if-renewed: per distinct client file, not per client, so it stays cheap at 100,000."""
        found = renewal.plan_for(self.scanner.inventory, self.history, self.derived.verdicts, self.book.by_canonical,
                                 sort=False, api=self.derived.api)
        self.publisher.set_families(renewal_metrics.samples(found))

    def _chunks(self, name: str) -> tuple[bytes, ...]:
        return client_metrics.chunks(name, self.scanner.inventory.clients[name], self.derived.verdicts.get(name),
                                     self.series_mode)

    def _render_self(self) -> None:
        with self._counters:
            events = dict(self.events)
        cache = self.scanner.parse_cache
        selection = self.publisher.selection
        stats = self_metrics.SelfStats(self._scanned, self.scan_duration, self.last_scan, events, dict(self.problems.errors_total),
                                       self.store.ok, dict(self.scanner.root_scans), cache.hits, cache.misses,
                                       selection.used, selection.dropped)
        self.publisher.set_families(self_metrics.samples(self.scanner.inventory, stats, self.problems.rows()))
