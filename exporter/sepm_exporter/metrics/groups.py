"""Group SyLink.xml files in each server's outbox: versions, heartbeats, embedded keys, parity, client counts."""

from __future__ import annotations

from collections.abc import Mapping

from sepm_exporter.judge.derived import Derived
from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sources.inventory import Inventory

SRV = ("server", "site")

FAMILIES: tuple[Family, ...] = (
    Family("sepm_sylink_info", "gauge", (*SRV, "group_id", "sha256", "canonical_sha256", "domain_id", "mode"),
           "A group's outbox SyLink.xml on a server; the value is 1."),
    Family("sepm_sylink_group_info", "gauge", (*SRV, "group_id", "group"),
           "The group's name as its SyLink.xml gives it (RegisterClient PreferredGroup); the value is 1."),
    Family("sepm_sylink_modified_timestamp_seconds", "gauge", (*SRV, "group_id"),
           "When a group's outbox SyLink.xml was last written (file mtime)."),
    Family("sepm_sylink_heartbeat_seconds", "gauge", (*SRV, "group_id"),
           "The heartbeat of the group's active communication mode."),
    Family("sepm_sylink_randomization_seconds", "gauge", (*SRV, "group_id"),
           "RandomizationRange when heartbeat randomization is on, else 0."),
    Family("sepm_sylink_certificate_info", "gauge", (*SRV, "group_id", "name", "public_key_sha256", "signature_hash"),
           "A certificate embedded in a group's SyLink.xml; the value is 1."),
    Family("sepm_sylink_certificate_not_after_timestamp_seconds", "gauge", (*SRV, "group_id", "name"),
           "When a certificate embedded in a group's SyLink.xml expires."),
    Family("sepm_sylink_server_key_match", "gauge", (*SRV, "group_id"),
           "1 when the server's current public key is among the keys embedded in its copy of the group file."),
    Family("sepm_sylink_replica_mismatch", "gauge", ("group_id",),
           "1 when the servers this exporter sees disagree on the group's canonical SyLink.xml."),
    Family("sepm_group_index_info", "gauge", (*SRV, "group_id", "checksum", "serial_number"),
           "A group's index2.xml profile attributes; the value is 1."),
    Family("sepm_group_index_modified_timestamp_seconds", "gauge", (*SRV, "group_id"),
           "When SEPM says the group's profile last changed (index2.xml LastModifiedTime, milliseconds in the file)."),
    Family("sepm_group_clients", "gauge", ("group_id", "state", "group_set", "evidence"),
           "Clients per group and state (current, stale, untrusted, unknown, unmatched), each counted once; shared files "
           "count under the lead group. evidence: file (its own SyLink.xml was read) or api (SEPM's records alone)."),
    Family("sepm_group_stale_file_clients", "gauge", ("group_id", "group_set", "canonical_sha256"),
           "Clients holding an older version of the group's file (untrusted ones included), per version held."),
    Family("sepm_group_stale_file_since_timestamp_seconds", "gauge", ("group_id", "group_set", "canonical_sha256"),
           "When the group's server-side file moved on from that version."),
)
CLIENT_FAMILIES = ("sepm_group_clients", "sepm_group_stale_file_clients", "sepm_group_stale_file_since_timestamp_seconds")
FILE_FAMILIES = tuple(f.name for f in FAMILIES if f.name not in CLIENT_FAMILIES)


def samples(inventory: Inventory, derived: Derived) -> dict[str, list[Sample]]:
    """Pure: the families read from the group files (all but the client counts, which move with clients)."""
    out: dict[str, list[Sample]] = {name: [] for name in FILE_FAMILIES}
    for name, server in inventory.servers.items():
        site = server.config.site
        for group_id, files in sorted(server.groups.items()):
            facts = files.sylink.facts
            mtime = files.sylink.mtime
            if facts is None or mtime is None:
                continue
            ids = (name, site, group_id)
            out["sepm_sylink_info"].append(((*ids, facts.sha256, facts.canonical_sha256, facts.domain_id, facts.mode), 1.0))
            if facts.preferred_group:
                out["sepm_sylink_group_info"].append(((*ids, facts.preferred_group), 1.0))
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
                out["sepm_sylink_certificate_not_after_timestamp_seconds"].append(((*ids, cert.name), cert.facts.not_after))
            match = derived.key_match.get((name, group_id))
            if match is not None:
                out["sepm_sylink_server_key_match"].append((ids, 1.0 if match else 0.0))
            if files.index2 is not None and files.index2.facts is not None:
                index = files.index2.facts
                out["sepm_group_index_info"].append(((*ids, index.checksum, index.serial_number), 1.0))
                modified = _milliseconds(index.last_modified)
                if modified is not None:
                    out["sepm_group_index_modified_timestamp_seconds"].append((ids, modified))
    for group_id, mismatch in sorted(derived.replica_mismatch.items()):
        out["sepm_sylink_replica_mismatch"].append(((group_id,), 1.0 if mismatch else 0.0))
    return out


def _milliseconds(text: str) -> float | None:
    """LastModifiedTime as Unix seconds, or None when it is not a plausible millisecond count."""
    if not text.isdigit() or len(text) > 16:
        return None
    return int(text) / 1000.0


def client_counts(counts: Mapping[tuple[str, str, str], int],
                  api_counts: Mapping[tuple[str, str], int] | None = None) -> dict[str, list[Sample]]:
    """`sepm_group_clients`: every state of every group, zeros included, so a panel never shows a gap.

    `counts` is keyed (group_id, group_set, state): clients whose file several groups share are
    counted once, under the set's lead group, with the set named (docs/decisions.md). `api_counts`,
    keyed (group_id, state), are the clients known only through SEPM's records (evidence `api`):
    a computer whose own file is read is counted once, under `file`.
    """
    rows: list[Sample] = [((group_id, state, group_set, "file"), float(count))
            for (group_id, group_set, state), count in sorted(counts.items())]
    rows += [((group_id, state, "", "api"), float(count)) for (group_id, state), count in sorted((api_counts or {}).items())]
    return {"sepm_group_clients": rows}




StaleKey = tuple[str, str, str, float]  # (group_id, group_set, canonical hash held, stale since)


def stale_files(tallies: Mapping[StaleKey, int]) -> dict[str, list[Sample]]:
    """Stale clients per group and version held: what the stale alert counts, in every `clients.series` mode.

    One series pair per (group, older version still held), not per client: a renewal that leaves
    half an estate behind adds a pair per group.
    """
    clients: list[Sample] = []
    since: list[Sample] = []
    for (group_id, group_set, canonical, stale_since), count in sorted(tallies.items()):
        if count:
            clients.append(((group_id, group_set, canonical), float(count)))
            since.append(((group_id, group_set, canonical), stale_since))
    return {"sepm_group_stale_file_clients": clients, "sepm_group_stale_file_since_timestamp_seconds": since}
