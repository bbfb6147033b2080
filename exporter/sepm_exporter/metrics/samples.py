"""From facts to samples: server families, one client's series, the group counts, and the self-metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sepm_exporter import __version__
from sepm_exporter.judge.clients import ClientVerdict
from sepm_exporter.judge.history import History
from sepm_exporter.metrics.catalog import EVENT_KINDS, FAMILIES
from sepm_exporter.metrics.family import Sample
from sepm_exporter.sepm.reasons import Reason
from sepm_exporter.sources.inventory import ClientState, Inventory, Observed


@dataclass(frozen=True)
class Derived:
    """Everything computed from the inventory for one rendering."""

    replica_mismatch: dict[str, bool]
    key_match: dict[tuple[str, str], bool]
    verdicts: dict[str, ClientVerdict]
    group_counts: dict[tuple[str, str], int]


@dataclass(frozen=True)
class SelfStats:
    """The exporter's own counters and timings."""

    scan_duration: float
    last_scan: float
    events: dict[str, int]
    errors_total: dict[str, int]
    state_file_ok: bool


Row = tuple[str, str, str, str, str]  # (server, client, file, reason, detail)


def _rows(server: str, client: str, observed: Observed[Any]) -> list[Row]:
    rows: list[Row] = []
    if observed.reason is not None:
        rows.append((server, client, observed.label, observed.reason.value, observed.detail))
    for problem in getattr(observed.facts, "problems", ()):
        rows.append((server, client, observed.label, problem.reason.value, problem.detail))
    return rows


def server_failing(inventory: Inventory) -> list[Row]:
    """Every problem of every server file (certificates, group files, stray folders)."""
    rows: list[Row] = []
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


def client_failing(inventory: Inventory, name: str) -> list[Row]:
    """One client's problems: its own file, and a second file that claims the same name."""
    rows: list[Row] = []
    client = inventory.clients.get(name)
    if client is not None:
        rows += _rows("", name, client.sylink)
    duplicate = inventory.duplicates.get(name)
    if duplicate is not None:
        rows += _rows("", name, duplicate)
    return rows


def failing(inventory: Inventory) -> list[Row]:
    """(server, client, file, reason, detail) for each problem; partial problems included (report, landing page)."""
    rows = server_failing(inventory)
    for name in dict.fromkeys([*inventory.clients, *inventory.duplicates]):
        rows += client_failing(inventory, name)
    return rows


SERVER_FAMILIES: tuple[str, ...] = (
    "sepm_certificate_not_after_timestamp_seconds",
    "sepm_certificate_not_before_timestamp_seconds",
    "sepm_certificate_info",
    "sepm_certificate_file_certificates",
    "sepm_server_key_changed_timestamp_seconds",
    "sepm_server_previous_key_info",
    "sepm_sylink_info",
    "sepm_sylink_modified_timestamp_seconds",
    "sepm_sylink_heartbeat_seconds",
    "sepm_sylink_randomization_seconds",
    "sepm_sylink_certificate_info",
    "sepm_sylink_certificate_not_after_timestamp_seconds",
    "sepm_sylink_server_key_match",
    "sepm_sylink_replica_mismatch",
    "sepm_group_index_info",
)  # the families `server_families` fills; a background source's own families are not among them


def with_contributions(own: list[Sample], contributed: Mapping[str, list[Sample]]) -> list[Sample]:
    """A file-side family with the samples other sources add to it (extension point).

    A background source that has facts of a file-side kind (the REST API's database certificate
    in `sepm_certificate_*`) hands them to `Exporter.add_server_samples(source, families)`; the
    family is then rendered as the file side's samples followed by each source's, in source order.
    The source keeps its samples apart by its own `file` label value (e.g. `api:/admin/database`).
    """
    if not contributed:
        return own
    return [*own, *(sample for source in sorted(contributed) for sample in contributed[source])]


def server_families(inventory: Inventory, history: History, derived: Derived) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {name: [] for name in SERVER_FAMILIES}
    for name, server in inventory.servers.items():
        site = server.config.site
        for label, observed in server.certificates.items():
            if observed.facts is None:
                continue
            leaf = observed.facts.leaf
            out["sepm_certificate_not_after_timestamp_seconds"].append(((name, site, label), leaf.not_after))
            out["sepm_certificate_not_before_timestamp_seconds"].append(((name, site, label), leaf.not_before))
            out["sepm_certificate_info"].append(
                (
                    (name, site, label, leaf.subject, leaf.issuer, leaf.serial, leaf.signature_hash,
                     leaf.key_algorithm, str(leaf.key_bits), leaf.public_key_sha256),
                    1.0,
                )
            )
            out["sepm_certificate_file_certificates"].append(((name, site, label), float(observed.facts.count)))
        entry = history.servers.get(name)
        if entry is not None and entry.changed_at is not None and entry.previous is not None:
            out["sepm_server_key_changed_timestamp_seconds"].append(((name, site), entry.changed_at))
            previous = entry.previous
            out["sepm_server_previous_key_info"].append(
                ((name, site, previous.public_key_sha256, previous.signature_hash, str(previous.key_bits)), 1.0)
            )
        for group_id, files in sorted(server.groups.items()):
            facts = files.sylink.facts
            mtime = files.sylink.mtime
            if facts is None or mtime is None:
                continue
            ids = (name, site, group_id)
            out["sepm_sylink_info"].append(
                ((*ids, facts.sha256, facts.canonical_sha256, facts.domain_id, facts.mode), 1.0)
            )
            out["sepm_sylink_modified_timestamp_seconds"].append((ids, mtime))
            if facts.heartbeat_seconds is not None:
                out["sepm_sylink_heartbeat_seconds"].append((ids, float(facts.heartbeat_seconds)))
            out["sepm_sylink_randomization_seconds"].append((ids, float(facts.randomization_seconds)))
            for cert in facts.certificates:
                if cert.facts is None:
                    continue
                out["sepm_sylink_certificate_info"].append(
                    ((*ids, cert.name, cert.facts.public_key_sha256, cert.facts.signature_hash), 1.0)
                )
                out["sepm_sylink_certificate_not_after_timestamp_seconds"].append(
                    ((*ids, cert.name), cert.facts.not_after)
                )
            match = derived.key_match.get((name, group_id))
            if match is not None:
                out["sepm_sylink_server_key_match"].append((ids, 1.0 if match else 0.0))
            if files.index2 is not None and files.index2.facts is not None:
                index = files.index2.facts
                out["sepm_group_index_info"].append(((*ids, index.checksum, index.serial_number), 1.0))
    for group_id, mismatch in sorted(derived.replica_mismatch.items()):
        out["sepm_sylink_replica_mismatch"].append(((group_id,), 1.0 if mismatch else 0.0))
    return out


CLIENT_FAMILIES: tuple[str, ...] = (
    "sepm_client_sylink_info",
    "sepm_client_sylink_modified_timestamp_seconds",
    "sepm_client_sylink_current",
    "sepm_client_sylink_stale_since_timestamp_seconds",
    "sepm_client_server_key_trusted",
)


def client_samples(name: str, client: ClientState, verdict: ClientVerdict | None) -> dict[str, list[Sample]]:
    """One client's series: rendered on their own, so a change to one client re-renders one client."""
    out: dict[str, list[Sample]] = {}
    facts = client.sylink.facts
    mtime = client.sylink.mtime
    if facts is None or mtime is None:
        return out
    group_id = verdict.group_id if verdict is not None else ""
    out["sepm_client_sylink_info"] = [((name, group_id, facts.sha256, facts.canonical_sha256), 1.0)]
    out["sepm_client_sylink_modified_timestamp_seconds"] = [((name,), mtime)]
    if verdict is None:
        return out
    if verdict.current is not None:
        out["sepm_client_sylink_current"] = [((name, group_id), 1.0 if verdict.current else 0.0)]
    if verdict.stale_since is not None:
        out["sepm_client_sylink_stale_since_timestamp_seconds"] = [((name, group_id), verdict.stale_since)]
    if verdict.trusted is not None:
        out["sepm_client_server_key_trusted"] = [((name,), 1.0 if verdict.trusted else 0.0)]
    return out


def group_count_samples(counts: dict[tuple[str, str], int]) -> list[Sample]:
    return [((group_id, state), float(count)) for (group_id, state), count in sorted(counts.items())]


def self_families(inventory: Inventory, stats: SelfStats, rows: list[Row]) -> dict[str, list[Sample]]:
    """The exporter's own series; `rows` are the failing files, kept up to date by the caller."""
    out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES if f.name.startswith("sepm_exporter_")}
    out["sepm_exporter_build_info"].append(((__version__,), 1.0))
    for name, server in inventory.servers.items():
        out["sepm_exporter_root_up"].append(((name, ""), 1.0 if server.root_up else 0.0))
    for key, collection in inventory.collections.items():
        out["sepm_exporter_root_up"].append((("", key), 1.0 if collection.root_up else 0.0))
    for server_name, client, label, reason, _detail in rows:
        out["sepm_exporter_file_error"].append(((server_name, client, label, reason), 1.0))
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
    out["sepm_exporter_state_file_ok"].append(((), 1.0 if stats.state_file_ok else 0.0))
    return out
