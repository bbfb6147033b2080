"""Group parity: do replication partners agree on a group's file, and does it embed the server's key?

Pure functions over the inventory: `sepm_sylink_replica_mismatch` and
`sepm_sylink_server_key_match` are computed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sepm_exporter.sepm.sylink import SyLinkFacts
from sepm_exporter.sources.inventory import Inventory


@dataclass(frozen=True)
class GroupCopy:
    """One server's readable copy of a group's SyLink.xml."""

    server: str
    facts: SyLinkFacts
    mtime: float


def group_copies(inventory: Inventory) -> dict[str, list[GroupCopy]]:
    """Every readable group file, by group ID, in server order."""
    copies: dict[str, list[GroupCopy]] = {}
    for name, server in inventory.servers.items():
        for group_id, files in server.groups.items():
            observed = files.sylink
            if observed.facts is not None and observed.mtime is not None:
                copies.setdefault(group_id, []).append(GroupCopy(name, observed.facts, observed.mtime))
    return copies


def group_names(copies: dict[str, list[GroupCopy]]) -> dict[str, str]:
    """Group ID -> the name its file gives (PreferredGroup): the on-call knows "My Company\\Tokyo", not 32 hex digits.

    The newest copy that names the group wins; a group whose files name none is left out.
    """
    names: dict[str, str] = {}
    for group_id, held in copies.items():
        named = [c for c in held if c.facts.preferred_group]
        if named:
            names[group_id] = newest(named).facts.preferred_group
    return names


def replica_mismatch(copies: dict[str, list[GroupCopy]]) -> dict[str, bool]:
    """For groups held by two servers or more: True when their canonical forms differ."""
    return {
        group_id: len({c.facts.canonical_sha256 for c in held}) > 1
        for group_id, held in copies.items()
        if len({c.server for c in held}) >= 2
    }


def newest(held: list[GroupCopy]) -> GroupCopy:
    """The group's current file: the newest among the partners (ties: the first server)."""
    return max(held, key=lambda c: c.mtime)


def current_server_keys(inventory: Inventory, remembered: Mapping[str, str] | None = None) -> dict[str, str]:
    """Server name -> public-key digest of its server certificate.

    When the file cannot be read now (half-written during a renewal, a share hiccup), the last key
    read from it stands: one bad read must not turn every client untrusted.
    """
    keys: dict[str, str] = {}
    for name, server in inventory.servers.items():
        observed = server.server_certificate
        if observed is not None and observed.facts is not None:
            keys[name] = observed.facts.leaf.public_key_sha256
        elif remembered is not None and name in remembered:
            keys[name] = remembered[name]
    return keys


def server_key_match(inventory: Inventory, keys: dict[str, str]) -> dict[tuple[str, str], bool]:
    """(server, group) -> whether the server's own current key is embedded in its copy of the group file."""
    matches: dict[tuple[str, str], bool] = {}
    for name, server in inventory.servers.items():
        key = keys.get(name)
        if key is None:
            continue
        for group_id, files in server.groups.items():
            if files.sylink.facts is not None:
                matches[(name, group_id)] = key in files.sylink.facts.key_digests
    return matches
