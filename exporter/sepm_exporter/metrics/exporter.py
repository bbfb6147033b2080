"""The exporter's own health: roots, failing files, scans, events, caches. What an operator alerts on first."""

from __future__ import annotations

from dataclasses import dataclass, field

from sepm_exporter import __version__
from sepm_exporter.judge.problems import FileProblem
from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sepm.reasons import Reason
from sepm_exporter.sources.inventory import Inventory
from sepm_exporter.sources.scanner import RootScan

ROOT = ("server", "client_root")
EVENT_KINDS = ("created", "modified", "deleted", "moved", "overflow", "reconcile", "scan_failed")

FAMILIES: tuple[Family, ...] = (
    Family("sepm_exporter_build_info", "gauge", ("version",), "The exporter's version; the value is 1."),
    Family("sepm_exporter_ready", "gauge", (),
           "1 once the first full scan has ended; before that /metrics carries only the exporter's own series."),
    Family("sepm_exporter_root_up", "gauge", ROOT,
           "1 while a watched root (a server tree or a client collection) can be read."),
    Family("sepm_exporter_root_scan_duration_seconds", "gauge", ROOT,
           "How long the last full scan of this root took."),
    Family("sepm_exporter_root_scan_success", "gauge", ROOT,
           "1 when the last full scan of this root ended without an unexpected error, else 0 (the log says why)."),
    Family("sepm_exporter_file_error", "gauge", ("server", "client", "file", "reason"),
           "1 for each watched file that now fails, with a fixed reason."),
    Family("sepm_exporter_file_errors_total", "counter", ("reason",),
           "Files that started failing, by reason, since the exporter started."),
    Family("sepm_exporter_files", "gauge", ("kind",), "Files currently watched, by kind."),
    Family("sepm_exporter_scan_duration_seconds", "gauge", (), "How long the last reconciliation scan took."),
    Family("sepm_exporter_last_scan_timestamp_seconds", "gauge", (), "When the last reconciliation scan ended."),
    Family("sepm_exporter_events_total", "counter", ("kind",),
           "File-system events and reconciliation findings that led to a re-read, by kind."),
    Family("sepm_exporter_parse_cache_requests_total", "counter", ("result",),
           "SyLink.xml parses asked of the content cache, by result (hit: same bytes parsed before; miss)."),
    Family("sepm_exporter_state_file_ok", "gauge", (),
           "1 when the state file was loaded (or absent) and last saved without error, else 0."),
    Family("sepm_exporter_client_series", "gauge", (),
           "Per-client series published now (clients.series chooses the clients, clients.series_limit bounds them)."),
    Family("sepm_exporter_client_series_dropped", "gauge", (),
           "Per-client series left out because clients.series_limit was reached; the report, the page and "
           "check --stranded still name those clients."),
    Family("sepm_exporter_client_folders_without_sylink", "gauge", ("client_root",),
           "Entries of a client collection that hold no SyLink.xml (empty folders, stray files), as of its last full scan."),
)


@dataclass(frozen=True)
class SelfStats:
    """The exporter's own counters and timings, copied by the writer for one rendering."""

    ready: bool
    scan_duration: float
    last_scan: float
    events: dict[str, int]
    errors_total: dict[str, int]
    state_file_ok: bool
    root_scans: dict[tuple[str, str], RootScan] = field(default_factory=dict)  # (server, client_root) -> scan
    cache_hits: int = 0
    cache_misses: int = 0
    client_series: int = 0
    client_series_dropped: int = 0


def samples(inventory: Inventory, stats: SelfStats, problems: list[FileProblem]) -> dict[str, list[Sample]]:
    """Pure: every family of this area; `problems` are the failing files, kept up to date by the runtime."""
    out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES}
    out["sepm_exporter_build_info"].append(((__version__,), 1.0))
    out["sepm_exporter_ready"].append(((), 1.0 if stats.ready else 0.0))
    for name, server in inventory.servers.items():
        out["sepm_exporter_root_up"].append(((name, ""), 1.0 if server.root_up else 0.0))
    for key, collection in inventory.collections.items():
        out["sepm_exporter_root_up"].append((("", key), 1.0 if collection.root_up else 0.0))
        out["sepm_exporter_client_folders_without_sylink"].append(((key,), float(collection.without_sylink)))
    for root, scan in stats.root_scans.items():
        out["sepm_exporter_root_scan_duration_seconds"].append((root, scan.seconds))
        out["sepm_exporter_root_scan_success"].append((root, 1.0 if scan.ok else 0.0))
    for problem in problems:
        out["sepm_exporter_file_error"].append(((problem.server, problem.client, problem.file, problem.reason), 1.0))
    for reason in Reason:
        out["sepm_exporter_file_errors_total"].append(((reason.value,), float(stats.errors_total.get(reason.value, 0))))
    groups = sum(len(s.groups) for s in inventory.servers.values())
    certificates = sum(len(s.certificates) for s in inventory.servers.values())
    out["sepm_exporter_files"].extend(
        [(("server_certificate",), float(certificates)), (("group_sylink",), float(groups)),
         (("client_sylink",), float(len(inventory.clients)))]
    )
    out["sepm_exporter_scan_duration_seconds"].append(((), stats.scan_duration))
    out["sepm_exporter_last_scan_timestamp_seconds"].append(((), stats.last_scan))
    for kind in EVENT_KINDS:
        out["sepm_exporter_events_total"].append(((kind,), float(stats.events.get(kind, 0))))
    out["sepm_exporter_parse_cache_requests_total"].extend([(("hit",), float(stats.cache_hits)),
                                                            (("miss",), float(stats.cache_misses))])
    out["sepm_exporter_state_file_ok"].append(((), 1.0 if stats.state_file_ok else 0.0))
    out["sepm_exporter_client_series"].append(((), float(stats.client_series)))
    out["sepm_exporter_client_series_dropped"].append(((), float(stats.client_series_dropped)))
    return out
