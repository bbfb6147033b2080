"""Client classification: current, stale, untrusted, unknown or unmatched, and since when.

`sepm_client_sylink_current`, `..._stale_since_timestamp_seconds`, `sepm_client_server_key_trusted`
and `sepm_group_clients` are computed here, from the inventory and the remembered group versions.

Attribution: a SyLink.xml carries no group ID, so a client is told its group by which group's
file (current or remembered) it holds. When several groups hold that very version (groups that
inherit the same settings), the client is attributed to the candidate set, published under its
lead group (the lowest group ID) with `group_set` naming the set: counted once, alerted once, and
the on-call is told every group that may be its own (docs/decisions.md).

Trust is three-valued: trusted when the file embeds a current key of a watched server; untrusted
only when every server the file lists (its `ServerCertList`) is watched here and none of their
current keys is embedded; otherwise unknown, because a server this exporter does not see may
still be the one the client talks to.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sepm_exporter.judge.history import GroupVersion
from sepm_exporter.judge.parity import GroupCopy, newest
from sepm_exporter.sepm.sylink import SyLinkFacts


class ClientStatus(enum.StrEnum):
    """One state per client for `sepm_group_clients`; untrusted outranks stale, which outranks current."""

    CURRENT = "current"
    STALE = "stale"
    UNTRUSTED = "untrusted"
    UNMATCHED = "unmatched"
    UNKNOWN = "unknown"  # trust cannot be told here: the file lists a server this exporter does not watch


@dataclass(frozen=True, slots=True)
class ClientVerdict:
    """What the exporter concludes about one client's SyLink.xml."""

    group_id: str  # the group, or the lead of the candidate set; "" when no group holds the file
    current: bool | None  # None when unmatched
    stale_since: float | None
    trusted: bool | None  # None when unknown (a listed server is not watched, or no key is known)
    status: ClientStatus
    group_set: str = ""  # when several groups hold the file: the candidate set (see `set_label`)


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


SET_LABEL_MEMBERS = 4  # group IDs spelled out in `group_set`; the rest are counted ("+N")


def set_label(groups: Iterable[str]) -> str:
    """The `group_set` label of a candidate set: sorted IDs joined by ",", at most four, then "+N"."""
    ordered = sorted(groups)
    if len(ordered) < 2:
        return ""
    shown = ",".join(ordered[:SET_LABEL_MEMBERS])
    return shown if len(ordered) <= SET_LABEL_MEMBERS else f"{shown},+{len(ordered) - SET_LABEL_MEMBERS}"


@dataclass(frozen=True)
class TrustBasis:
    """What this exporter knows about the servers it watches, to judge a client's keys.

    `current`: each watched server's current key. `names`: the watched servers' configured names,
    casefolded. `known`: every key a watched server has had (current and previous), so that an
    embedded certificate can be matched to its server by key even when its `Name` is a host name.
    """

    current: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()


def trust_basis(keys: Mapping[str, str], previous: Mapping[str, str] | None = None) -> TrustBasis:
    """From server name -> current key (and server name -> previous key, from the key history)."""
    earlier = dict(previous or {})
    return TrustBasis(frozenset(keys.values()), frozenset(n.casefold() for n in keys),
                      frozenset(keys.values()) | frozenset(earlier.values()))


def listed(name: str, digest: str | None, basis: TrustBasis) -> bool:
    """Whether an embedded certificate names a server this exporter watches (by name or by a key it had)."""
    return name.casefold() in basis.names or (digest is not None and digest in basis.known)


def trust(certificates: Iterable[tuple[str, str | None]], basis: TrustBasis) -> bool | None:
    """Three-valued: True, False only when every listed server is watched, None otherwise.

    `certificates` are the file's (Name, key digest or None when it does not decode).
    """
    entries = list(certificates)
    if not basis.current:
        return None
    if any(d is not None and d in basis.current for _, d in entries):
        return True
    if entries and all(listed(name, digest, basis) for name, digest in entries):
        return False
    return None


def classify(canonical: str, certificates: tuple[tuple[str, str | None], ...], index: GroupIndex,
             basis: TrustBasis) -> ClientVerdict:
    """Pure: one client's file against every group's current and remembered versions."""
    current_in = index.current.get(canonical, ())
    known_in = [g for g in index.known.get(canonical, ()) if g not in current_in]
    trusted = trust(certificates, basis)
    if current_in:
        status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.UNKNOWN if trusted is None else ClientStatus.CURRENT
        return ClientVerdict(min(current_in), True, None, trusted, status, set_label(current_in))
    if known_in:
        since = min(_stale_since(index.versions.get(g, []), canonical, index.newest[g]) for g in known_in)
        status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.STALE
        return ClientVerdict(min(known_in), False, since, trusted, status, set_label(known_in))
    status = ClientStatus.UNTRUSTED if trusted is False else ClientStatus.UNMATCHED
    return ClientVerdict("", None, None, trusted, status)


def embedded(facts: SyLinkFacts) -> tuple[tuple[str, str | None], ...]:
    """A file's (certificate Name, key digest) pairs: the servers it lists, for `trust`."""
    return tuple((c.name, c.facts.public_key_sha256 if c.facts is not None else None) for c in facts.certificates)


def group_counts(tallies: Mapping[tuple[str, str, str], int], group_ids: Iterable[str]) -> dict[tuple[str, str, str], int]:
    """(group_id, group_set, state) -> count, with every state of every known group present (zeros included).

    `tallies` are the runtime's running counts, kept up to date one verdict at a time; clients of a
    shared file count once, under the lead group, on a row of their own that names the set.
    """
    counts = {(g, "", s.value): 0 for g in group_ids for s in ClientStatus}
    counts.update((key, count) for key, count in tallies.items() if count)
    return counts
