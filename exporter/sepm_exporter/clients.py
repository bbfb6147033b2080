"""Client classification: current, stale, untrusted or unmatched, and since when.

`sepm_client_sylink_current`, `..._stale_since_timestamp_seconds`, `sepm_client_server_key_trusted`
and `sepm_group_clients` are computed here, from the inventory and the remembered group versions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sepm_exporter.history import GroupVersion
from sepm_exporter.inventory import Inventory
from sepm_exporter.parity import GroupCopy, newest


class ClientStatus(enum.StrEnum):
    """One state per client for `sepm_group_clients`; untrusted outranks stale, which outranks current."""

    CURRENT = "current"
    STALE = "stale"
    UNTRUSTED = "untrusted"
    UNMATCHED = "unmatched"


@dataclass(frozen=True)
class ClientVerdict:
    """What the exporter concludes about one client's SyLink.xml."""

    group_id: str  # "" when no group (or more than one) can be told
    current: bool | None  # None when unmatched
    stale_since: float | None
    trusted: bool | None  # None when no server key is known to compare with
    status: ClientStatus


def _stale_since(versions: list[GroupVersion], canonical: str, group_newest: GroupCopy) -> float:
    """When the group moved on from the version the client holds: the next version's first sighting."""
    for index, version in enumerate(versions):
        if version.canonical_sha256 == canonical and index + 1 < len(versions):
            return versions[index + 1].first_seen
    return group_newest.mtime


def classify(
    canonical: str,
    key_digests: frozenset[str],
    copies: dict[str, list[GroupCopy]],
    versions: dict[str, list[GroupVersion]],
    server_keys: set[str],
) -> ClientVerdict:
    """Pure: one client's file against every group's current and remembered versions."""
    current_in = [g for g, held in copies.items() if newest(held).facts.canonical_sha256 == canonical]
    known_in = [
        g
        for g in copies
        if g not in current_in
        and (
            any(v.canonical_sha256 == canonical for v in versions.get(g, []))
            or any(c.facts.canonical_sha256 == canonical for c in copies[g])
        )
    ]
    trusted = bool(key_digests & server_keys) if server_keys else None
    if current_in:
        group_id = current_in[0] if len(current_in) == 1 else ""
        status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.CURRENT
        return ClientVerdict(group_id, True, None, trusted, status)
    if known_in:
        group_id = known_in[0] if len(known_in) == 1 else ""
        since = min(_stale_since(versions.get(g, []), canonical, newest(copies[g])) for g in known_in)
        status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.STALE
        return ClientVerdict(group_id, False, since, trusted, status)
    status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.UNMATCHED
    return ClientVerdict("", None, None, trusted, status)


def classify_all(
    inventory: Inventory,
    copies: dict[str, list[GroupCopy]],
    versions: dict[str, list[GroupVersion]],
    server_keys: set[str],
) -> dict[str, ClientVerdict]:
    """Every readable client file."""
    verdicts: dict[str, ClientVerdict] = {}
    for name, client in inventory.clients.items():
        facts = client.sylink.facts
        if facts is not None:
            verdicts[name] = classify(facts.canonical_sha256, facts.key_digests(), copies, versions, server_keys)
    return verdicts


def group_counts(verdicts: dict[str, ClientVerdict], group_ids: set[str]) -> dict[tuple[str, str], int]:
    """(group_id, state) -> count, with every state of every known group present (zeros included)."""
    counts = {(g, s.value): 0 for g in group_ids for s in ClientStatus}
    for verdict in verdicts.values():
        key = (verdict.group_id, verdict.status.value)
        counts[key] = counts.get(key, 0) + 1
    return counts
