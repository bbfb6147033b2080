"""The one place a running exporter is put together from a Config: the file side, the watcher, the
REST API pollers and the TLS prober, each wired to publish into the same `Exporter`.

Every command builds through here (`serve` and `demo` a long-running one, `metrics`, `check` and
`textfile` a one-shot scan), so what they show is made the same way.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from sepm_exporter.judge.api_clients import records_of
from sepm_exporter.judge.served import probe_findings
from sepm_exporter.metrics import api as api_metrics
from sepm_exporter.metrics.probes import probe_families
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import Config
from sepm_exporter.sources.api import ApiPollers, ApiState
from sepm_exporter.sources.probes import Prober, ProbeResult
from sepm_exporter.sources.watcher import Watcher

Progress = Callable[[int, int], None]  # (units done, units found) during a first scan


def pollers_for(exporter: Exporter) -> ApiPollers | None:
    """Pollers for every server with `api:`, their families published at once (down, counters at 0);
    the database certificate joins the file side's certificate families (`Exporter.add_server_samples`)."""
    if not any(server.api is not None for server in exporter.config.servers):
        return None

    def on_change(states: list[ApiState]) -> None:
        families = api_metrics.families(states)  # computed outside the exporter's lock
        certificates = api_metrics.certificate_families(states)
        exporter.publish(families)
        exporter.add_server_samples(api_metrics.SOURCE, certificates)
        exporter.api_records(records_of(states))

    pollers = ApiPollers(exporter.config.servers, on_change, exporter.clock)
    pollers.initial()
    return pollers


def poll_once(exporter: Exporter) -> None:
    """One-shot commands: one poll of every API, each request bounded by its `timeout`."""
    pollers = pollers_for(exporter)
    if pollers is not None:
        pollers.poll_once()
        pollers.stop()


def prober_for(exporter: Exporter) -> Prober:
    """The TLS prober, publishing into this exporter, compared with the keys on disk at each round."""

    def deliver(results: list[ProbeResult]) -> None:
        exporter.publish(probe_families(results, exporter.disk_keys()), source="probes",
                         findings=lambda inventory: probe_findings(results, inventory))

    return Prober(exporter.config, deliver)


def scanned(config: Config, progress: Progress | None = None, probe: bool = False) -> Exporter:
    """A one-shot exporter: one full scan, one poll of every API and, with `probe`, one probe round
    (bounded by probe.timeout; nothing when no probes are configured)."""
    exporter = Exporter(config)
    exporter.full_scan(progress)
    poll_once(exporter)
    if probe:
        prober_for(exporter).round()
    return exporter


def rescan(exporter: Exporter) -> None:
    """`textfile --interval`: stat-first (only files that changed are read again), then the APIs again."""
    exporter.full_scan()
    poll_once(exporter)


class Running:
    """A long-running exporter: the watcher, the API pollers (their own threads: a scrape never waits
    for them) and the prober, started around the first scan and stopped together."""

    def __init__(self, config: Config, config_source: str = "") -> None:
        self.exporter = Exporter(config)
        self.exporter.config_source = config_source
        self.watcher = Watcher(self.exporter, config.watch_mode)
        self.pollers: ApiPollers | None = None
        self.prober: Prober | None = None

    def start(self, progress: Progress | None = None) -> None:
        """Watch, poll, run the first scan, then probe: the first probe round already has the keys on disk."""
        self.watcher.start()
        self.pollers = pollers_for(self.exporter)
        if self.pollers is not None:
            self.pollers.start()
        self.exporter.full_scan(progress)
        self.prober = prober_for(self.exporter)
        self.prober.start()
        # The inventory is a million long-lived objects; without this, a full collection walks them all
        # from time to time and stalls scrapes and re-reads for a second at 100,000 clients.
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        if self.prober is not None:
            self.prober.stop()
        if self.pollers is not None:
            self.pollers.stop()
        self.watcher.stop()
