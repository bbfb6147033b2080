"""Client classification: current, stale, untrusted or unmatched, and since when.

`sepm_client_sylink_current`, `..._stale_since_timestamp_seconds`, `sepm_client_server_key_trusted`
and `sepm_group_clients` are computed here, from the inventory and the remembered group versions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sepm_exporter.judge.history import GroupVersion
from sepm_exporter.judge.parity import GroupCopy, newest


class ClientStatus(enum.StrEnum):
    """One state per client for `sepm_group_clients`; untrusted outranks stale, which outranks current."""

    CURRENT = "current"
    STALE = "stale"
    UNTRUSTED = "untrusted"
    UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True)
class GroupIndex:
    """Every group's newest and remembered versions, looked up by canonical hash.

    Built once per change of the groups (O(groups x versions)), so judging a client is a dictionary
    lookup, not a walk over every group: 100,000 clients against 1,000 groups stay cheap.
    """

    newest: dict[str, GroupCopy]  # group -> its current file
    versions: dict[str, list[GroupVersion]]
    current: dict[str, tuple[str, ...]]  # canonical -> groups whose newest file it is
    known: dict[str, tuple[str, ...]]  # canonical -> groups that held it before (or hold it on a lagging partner)

    def canonicals(self) -> set[str]:
        return set(self.current) | set(self.known)

    def changed(self, before: GroupIndex | None) -> set[str]:
        """Canonical hashes whose verdict inputs differ from `before`: only their clients need judging again."""
        if before is None:
            return self.canonicals()
        out = {c for c in self.canonicals() | before.canonicals()
               if self.current.get(c) != before.current.get(c) or self.known.get(c) != before.known.get(c)}
        for canonical in self.known:
            groups = self.known[canonical]
            if any(_head(self.newest.get(g)) != _head(before.newest.get(g)) or self.versions.get(g) != before.versions.get(g)
                   for g in groups):
                out.add(canonical)  # stale_since moves with the group's newest file and its versions
        return out


def _head(copy: GroupCopy | None) -> tuple[str, float, str] | None:
    return None if copy is None else (copy.server, copy.mtime, copy.facts.canonical_sha256)


def build_index(copies: dict[str, list[GroupCopy]], versions: dict[str, list[GroupVersion]]) -> GroupIndex:
    """Pure: the lookup tables for `classify`, in the groups' own order."""
    newest_of = {g: newest(held) for g, held in copies.items()}
    current: dict[str, list[str]] = {}
    known: dict[str, list[str]] = {}
    for group_id, held in copies.items():
        head = newest_of[group_id].facts.canonical_sha256
        current.setdefault(head, []).append(group_id)
        others = {v.canonical_sha256 for v in versions.get(group_id, [])} | {c.facts.canonical_sha256 for c in held}
        for canonical in others - {head}:
            known.setdefault(canonical, []).append(group_id)
    return GroupIndex(newest_of, {g: versions.get(g, []) for g in copies},
                      {c: tuple(g) for c, g in current.items()}, {c: tuple(g) for c, g in known.items()})


def classify(canonical: str, key_digests: frozenset[str], index: GroupIndex, server_keys: set[str] | frozenset[str]) -> ClientVerdict:
    """Pure: one client's file against every group's current and remembered versions."""
    current_in = index.current.get(canonical, ())
    known_in = [g for g in index.known.get(canonical, ()) if g not in current_in]
    trusted = bool(key_digests & server_keys) if server_keys else None
    if current_in:
        group_id = current_in[0] if len(current_in) == 1 else ""
        status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.CURRENT
        return ClientVerdict(group_id, True, None, trusted, status)
    if known_in:
        group_id = known_in[0] if len(known_in) == 1 else ""
        since = min(_stale_since(index.versions.get(g, []), canonical, index.newest[g]) for g in known_in)
        status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.STALE
        return ClientVerdict(group_id, False, since, trusted, status)
    status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.UNMATCHED
    return ClientVerdict("", None, None, trusted, status)


def group_counts(tallies: Mapping[tuple[str, str], int], group_ids: Iterable[str]) -> dict[tuple[str, str], int]:
    """(group_id, state) -> count, with every state of every known group present (zeros included).

    `tallies` are the runtime's running counts, kept up to date one verdict at a time.
    """
    counts = {(g, s.value): 0 for g in group_ids for s in ClientStatus}
    counts.update((key, count) for key, count in tallies.items() if count)
    return counts
