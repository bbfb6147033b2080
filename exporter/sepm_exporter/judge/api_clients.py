"""Clients known through SEPM's records: one per computer the APIs list, judged by `keysets.infer`.

A computer whose own SyLink.xml is read (a client of the same name, compared case-insensitively)
is that client, judged by its file (evidence `file`); the API's record of it is then set aside.
When the match is ambiguous (two files or two records of one name), nothing is merged: they stay
separate clients. The same computer listed by two partners' APIs (one replicated database) counts
once: by `uniqueId`, the record with the newer check-in wins.

Computers are many and their verdicts few: a verdict depends on (server, group, serial) only, so it
is computed once per distinct triple, and each computer holds an index into that small table.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from sepm_exporter.judge.clients import ClientStatus, TrustBasis
from sepm_exporter.judge.keysets import CertificateTime, GroupNow, KeyVerdict, infer, old_profiles_connect
from sepm_exporter.sepm.computers import ComputerStore, StoredComputer
from sepm_exporter.sepm.rest import Group
from sepm_exporter.sepm.serial import SerialError, parse_serial
from sepm_exporter.sources.api import ApiState

EVIDENCE_FILE = "file"
EVIDENCE_API = "api"
KB187099_BUILD = 5323  # 14.2 RU2's build: agents below it on 14.2 are 14.2 and 14.2.1 (RU1), which cannot fail over


@dataclass(frozen=True)
class ApiRecords:
    """One server's last good poll: its computers and its /groups."""

    server: str
    computers: ComputerStore
    groups: tuple[Group, ...]
    taken_at: float = 0.0  # when the poll ran: tells one poll from the next


def records_of(states: Iterable[ApiState]) -> list[ApiRecords]:
    """The pollers' states as the records the client book judges: each server's last good poll."""
    return [ApiRecords(s.server, s.snapshot.computers, s.snapshot.group_list, s.snapshot.taken_at)
            for s in sorted(states, key=lambda s: s.server) if s.snapshot is not None and s.snapshot.computers is not None]


class ApiClient(NamedTuple):
    """A client known through the API, as the surfaces show it."""

    name: str  # the client's name in lists (the computer name; its uniqueId added when the name is taken)
    computer: StoredComputer
    server: str
    verdict: KeyVerdict


@dataclass
class ApiJudgement:
    """Every API-only client's verdict, compactly: (source, row) and a verdict index per client."""

    sources: list[ApiRecords] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    source_of: array[int] = field(default_factory=lambda: array("H"))
    row_of: array[int] = field(default_factory=lambda: array("I"))
    verdict_of: array[int] = field(default_factory=lambda: array("I"))
    verdicts: list[tuple[str, KeyVerdict]] = field(default_factory=list)  # (group id, verdict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, state) -> API-only clients
    reasons: dict[str, int] = field(default_factory=dict)  # unknown reason -> computers (duplicate_name included)
    by_file: int = 0  # computers judged by their own file instead
    old_agents: int = 0  # computers on 14.2 or 14.2.1 (KB 187099: no failover), file-judged ones included
    groups: frozenset[str] = frozenset()  # every group an API lists

    def all_counts(self) -> dict[tuple[str, str], int]:
        """(group, state) -> clients, every state of every group an API lists, zeros included: no panel gap."""
        counts = {(group, state.value): 0 for group in self.groups for state in ClientStatus}
        counts.update(self.counts)
        return counts

    def __len__(self) -> int:
        return len(self.names)

    def client(self, index: int) -> ApiClient:
        source = self.sources[self.source_of[index]]
        return ApiClient(self.names[index], source.computers.row(self.row_of[index]), source.server,
                         self.verdicts[self.verdict_of[index]][1])

    def __iter__(self) -> Iterator[ApiClient]:
        return (self.client(i) for i in range(len(self.names)))

    def needing_action(self) -> Iterator[ApiClient]:
        """Clients not current and trusted: the ones lists and per-client series name."""
        wanted = {i for i, (_, v) in enumerate(self.verdicts) if v.status is not ClientStatus.CURRENT}
        return (self.client(i) for i in range(len(self.names)) if self.verdict_of[i] in wanted)


def old_agent(version: str) -> bool:
    """14.2 or 14.2.1 (14.2.758 to 14.2 RU1 MP1, 14.2.1057): KB 187099's clients that cannot use failover."""
    parts = version.strip().split(".")
    if len(parts) < 3 or parts[0] != "14" or parts[1] != "2" or not parts[2].isdigit():
        return False
    return int(parts[2]) < KB187099_BUILD


def group_now(records: ApiRecords, outbox_keys: Mapping[tuple[str, str], frozenset[str]],
              newest_keys: Mapping[str, frozenset[str]]) -> dict[str, GroupNow]:
    """Each group's current serial (from this server's /groups) and the keys of the file this site serves."""
    out = {}
    for group in records.groups:
        try:
            serial = parse_serial(group.policy_serial)
        except SerialError:
            serial = None
        keys = outbox_keys.get((records.server, group.group_id), newest_keys.get(group.group_id))
        out[group.group_id] = GroupNow(serial, keys)
    return out


def _sightings(records: list[ApiRecords], picked: list[tuple[int, int]]) -> Iterator[tuple[float, float]]:
    """(profile time, last check-in) of each picked computer whose serial parses and who has checked in."""
    for source_index, row in picked:
        store = records[source_index].computers
        parsed = store.judged(row)[2].parsed
        last = store.last_ms(row)
        if parsed is not None and last >= 0:
            yield parsed.seconds, last / 1000.0


def judge(records: list[ApiRecords], file_clients: Mapping[str, int], outbox_keys: Mapping[tuple[str, str], frozenset[str]],
          newest_keys: Mapping[str, frozenset[str]], remembered: Mapping[str, Mapping[int, frozenset[str]]],
          certificates: tuple[CertificateTime, ...], basis: TrustBasis, now: float) -> ApiJudgement:
    """Pure: every API's computers against the files and keys the exporter holds.

    `file_clients`: casefolded client-file name -> how many files carry it.
    """
    out = ApiJudgement(sources=list(records))
    picked: list[tuple[int, int]]
    if len(records) == 1:  # one API: no partner lists the same computers
        picked = [(0, row) for row in range(len(records[0].computers))]
    else:
        chosen: dict[bytes | str, tuple[int, int, int]] = {}  # uniqueId -> source, row, last check-in
        for source_index, source in enumerate(records):
            store = source.computers
            for row in range(len(store)):
                identity, last = store.identity(row), store.last_ms(row)
                seen = chosen.get(identity)
                if seen is None or last > seen[2]:
                    chosen[identity] = (source_index, row, last)
        picked = sorted((c[0], c[1]) for c in chosen.values())
    names: dict[str, int] = {}
    for source_index, row in picked:
        folded = records[source_index].computers.names[row].casefold()
        names[folded] = names.get(folded, 0) + 1
    groups_now = {source.server: group_now(source, outbox_keys, newest_keys) for source in records}
    connects = old_profiles_connect(certificates, _sightings(records, picked))
    memo: dict[tuple[str, str, int], int] = {}
    taken = {name for name, count in names.items() if count > 1}
    all_groups: set[str] = {g.group_id for source in records for g in source.groups}
    old_agents = [[old_agent(v) for v in source.computers.agents()] for source in records]
    for source_index, row in picked:
        source = records[source_index]
        name, group_id, serial, agent = source.computers.judged(row)
        if old_agents[source_index][agent]:
            out.old_agents += 1
        folded = name.casefold()
        files = file_clients.get(folded, 0)
        if files == 1 and names[folded] == 1:
            out.by_file += 1
            continue
        if folded in taken:
            out.reasons["duplicate_name"] = out.reasons.get("duplicate_name", 0) + 1
        key = (source.server, group_id, id(serial))
        verdict_index = memo.get(key)
        if verdict_index is None:
            verdict = infer(group_id, serial.parsed, serial.reason, groups_now[source.server].get(group_id),
                            remembered.get(group_id, {}), certificates, basis, now, connects)
            verdict_index = memo[key] = len(out.verdicts)
            out.verdicts.append((group_id, verdict))
        verdict = out.verdicts[verdict_index][1]
        if files or folded in taken or not name:
            name = f"{name} [{source.computers.row(row).unique_id or row}]"
        out.names.append(name)
        out.source_of.append(source_index)
        out.row_of.append(row)
        out.verdict_of.append(verdict_index)
        state_key = (group_id, verdict.status.value)
        out.counts[state_key] = out.counts.get(state_key, 0) + 1
        if verdict.reason:
            out.reasons[verdict.reason.value] = out.reasons.get(verdict.reason.value, 0) + 1
        if group_id:
            all_groups.add(group_id)
    out.groups = frozenset(all_groups)
    return out


def profiles_seen(records: list[ApiRecords], outbox_keys: Mapping[tuple[str, str], frozenset[str]]
                  ) -> dict[str, tuple[int, frozenset[str], float]]:
    """Group -> (its current profile time, the keys of the file its server serves now, when that poll ran)."""
    out: dict[str, tuple[int, frozenset[str], float]] = {}
    for source in records:
        for group in source.groups:
            keys = outbox_keys.get((source.server, group.group_id))
            try:
                serial = parse_serial(group.policy_serial)
            except SerialError:
                continue
            if keys is not None and serial.prefix == group.group_id[:4].upper():
                out.setdefault(group.group_id, (serial.time_ms, keys, source.taken_at))
    return out
