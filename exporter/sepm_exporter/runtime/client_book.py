"""What each client holds and its verdict, kept incrementally: a change re-judges only the clients it touches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sepm_exporter.judge import api_clients
from sepm_exporter.judge.api_clients import ApiJudgement, ApiRecords
from sepm_exporter.judge.clients import ClientVerdict, GroupIndex, TrustBasis, classify, embedded, group_counts
from sepm_exporter.judge.history import History, remembered_profiles
from sepm_exporter.judge.keysets import CertificateTime
from sepm_exporter.judge.parity import group_copies, newest
from sepm_exporter.metrics.groups import StaleKey
from sepm_exporter.sepm.sylink import SyLinkFacts
from sepm_exporter.sources.inventory import ClientState, Inventory


@dataclass
class Judged:
    """What one judging step changed, for the publisher (series) and the problem log."""

    touched: list[tuple[list[str], ClientVerdict]] = field(default_factory=list)  # clients judged, with their verdict
    dropped: list[str] = field(default_factory=list)  # clients with no verdict now: no series
    check: set[str] = field(default_factory=set)  # clients whose file problems to look at again


class ClientBook:
    """Verdicts, per-group counts, and which clients hold which file (by canonical hash).

    Clients holding the same parsed file (the parse cache hands them one facts object) are judged,
    counted and indexed together: the benchmark's 100,000 clients are about a thousand such
    bundles, so the per-client work is one lookup and one append.
    """

    def __init__(self) -> None:
        self.verdicts: dict[str, ClientVerdict] = {}  # client -> verdict
        self.counts: dict[tuple[str, str, str], int] = {}  # (group, group set, state) -> clients
        self.stale: dict[StaleKey, int] = {}  # (group, group set, version held, stale since) -> clients
        self.canonical_of: dict[str, str] = {}  # client -> canonical hash of its file
        self.by_canonical: dict[str, set[str]] = {}  # canonical hash -> clients holding it
        self.index: GroupIndex | None = None
        self.basis = TrustBasis()
        self._pool: dict[ClientVerdict, ClientVerdict] = {}
        self.pool_limit = 1024  # the pool only interns: rebuilt from live verdicts when it doubles
        self._memo: dict[tuple[str, frozenset[str]], ClientVerdict] = {}  # valid for one index

    @property
    def pool_size(self) -> int:
        return len(self._pool)

    def stale_for(self, basis: TrustBasis) -> bool:
        """Whether the group index must be rebuilt before judging (a new trust basis, or none yet)."""
        return basis != self.basis or self.index is None

    def rebase(self, index: GroupIndex, basis: TrustBasis, clients: Iterable[str]) -> set[str]:
        """A new group index (or trust basis): the clients to judge again, those whose file it touches.

        `clients` are all the clients the inventory holds; a new basis re-judges every one of them.
        """
        rejudge: set[str] = set()
        for canonical in index.changed(self.index):
            rejudge |= self.by_canonical.get(canonical, set())
        if basis != self.basis:
            rejudge |= set(clients) | set(self.verdicts)
        self.index, self.basis = index, basis
        self._memo = {}
        if len(self._pool) > self.pool_limit:  # a bounded pool: verdicts no client holds go
            self._pool = {v: v for v in self.verdicts.values()}
            self.pool_limit = max(1024, 2 * len(self._pool))
        return rejudge

    def group_counts(self) -> dict[tuple[str, str, str], int]:
        assert self.index is not None
        return group_counts(self.counts, self.index.newest)

    def judge(self, names: set[str], clients: Mapping[str, ClientState]) -> Judged:
        """These clients' verdicts, places in the indexes and counts, as their files are now."""
        assert self.index is not None
        out = Judged()
        self._forget(names)
        bundles: dict[int, tuple[SyLinkFacts, list[str]]] = {}  # id(facts) -> the facts, the clients holding them
        for name in names:
            client = clients.get(name)
            facts = client.sylink.facts if client is not None else None
            if facts is None or client is None:
                out.dropped.append(name)  # gone, or no facts: no verdict, no series
                if client is not None:
                    out.check.add(name)
                continue
            bundle = bundles.get(id(facts))
            if bundle is None:
                bundles[id(facts)] = (facts, [name])
            else:
                bundle[1].append(name)
            if client.sylink.reason is not None:
                out.check.add(name)
        for facts, held in bundles.values():
            verdict = self._verdict(facts, self.index)
            self.verdicts.update(dict.fromkeys(held, verdict))
            key = (verdict.group_id, verdict.group_set, verdict.status.value)
            self.counts[key] = self.counts.get(key, 0) + len(held)
            self.canonical_of.update(dict.fromkeys(held, facts.canonical_sha256))
            self.by_canonical.setdefault(facts.canonical_sha256, set()).update(held)
            if verdict.stale_since is not None:
                stale = (verdict.group_id, verdict.group_set, facts.canonical_sha256, verdict.stale_since)
                self.stale[stale] = self.stale.get(stale, 0) + len(held)
            out.touched.append((held, verdict))
            if facts.problems:
                out.check.update(held)
        return out

    def _verdict(self, facts: SyLinkFacts, index: GroupIndex) -> ClientVerdict:
        """Clients with the same file get the same verdict: the file is judged once per index."""
        memo_key = (facts.canonical_sha256, facts.key_digests)
        verdict = self._memo.get(memo_key)
        if verdict is None:
            verdict = classify(facts.canonical_sha256, embedded(facts), index, self.basis)
            verdict = self._memo[memo_key] = self._pool.setdefault(verdict, verdict)
        return verdict

    def _forget(self, names: set[str]) -> None:
        """Take these clients out of the counts and the file index before they are judged again."""
        verdicts, canonical_of = self.verdicts, self.canonical_of
        if not (verdicts or canonical_of):
            return
        for name in [n for n in names if n in canonical_of or n in verdicts]:
            old = verdicts.pop(name, None)
            old_canonical = canonical_of.pop(name, None)
            if old is not None:
                self.counts[(old.group_id, old.group_set, old.status.value)] -= 1
                if old.stale_since is not None and old_canonical is not None:
                    stale = (old.group_id, old.group_set, old_canonical, old.stale_since)
                    if self.stale[stale] > 1:
                        self.stale[stale] -= 1
                    else:
                        del self.stale[stale]
            if old_canonical is not None:
                holders = self.by_canonical[old_canonical]
                holders.discard(name)
                if not holders:
                    del self.by_canonical[old_canonical]


class ApiEvidence:
    """Clients known through SEPM's records (evidence `api`): the APIs' last good polls, judged again
    when a poll lands, when the server side or the trust basis changes, or when a client file of a
    listed computer's name comes or goes (a file wins over the record)."""

    def __init__(self) -> None:
        self.records: list[ApiRecords] = []
        self.judged: ApiJudgement | None = None
        self.names: frozenset[str] = frozenset()  # casefolded computer names the APIs list
        self._pending: dict[str, tuple[int, frozenset[str], float]] = {}  # group -> profile seen, poll time

    def touches(self, client_names: Iterable[str]) -> bool:
        """Whether a change of these client files changes who is judged by the API."""
        return bool(self.records) and any(name.casefold() in self.names for name in client_names)

    def judge(self, inventory: Inventory, history: History, basis: TrustBasis, now: float) -> ApiJudgement | None:
        if not self.records:
            self.judged = None
            return None
        outbox, newest_keys = outbox_keys(inventory)
        files: dict[str, int] = {}
        for name in inventory.clients:
            folded = name.casefold()
            files[folded] = files.get(folded, 0) + 1
        groups = {g.group_id for r in self.records for g in r.groups} | {
            gid for r in self.records for gid in r.computers.group_ids()}
        remembered = {g: remembered_profiles(history, g) for g in groups if g in history.profiles}
        self.judged = api_clients.judge(self.records, files, outbox, newest_keys, remembered,
                                        certificate_times(inventory), basis, now)
        return self.judged

    def observe_profiles(self, inventory: Inventory, history: History) -> bool:
        """Remember each group's (profile time -> keys of its served file) once two polls in a row agree on
        it: a poll that lands between SEPM writing the serial and the outbox file must not be remembered.
        Two polls means two poll times: the same poll handed over again (every server's report repeats
        the others' last state) is not a second sighting."""
        from sepm_exporter.judge.history import record_profile

        outbox, _ = outbox_keys(inventory)
        dirty = False
        for group_id, (when, keys, polled) in api_clients.profiles_seen(self.records, outbox).items():
            before = self._pending.get(group_id)
            if before is not None and polled == before[2]:
                if (when, keys) != before[:2]:  # the file side moved under the same poll: start again
                    self._pending[group_id] = (when, keys, polled)
                continue
            if before is not None and (when, keys) == before[:2]:
                dirty |= record_profile(history, group_id, when, keys)
            self._pending[group_id] = (when, keys, polled)
        return dirty


def outbox_keys(inventory: Inventory) -> tuple[dict[tuple[str, str], frozenset[str]], dict[str, frozenset[str]]]:
    """(server, group) -> keys its outbox SyLink.xml embeds; group -> keys of the newest copy."""
    outbox = {(name, group_id): files.sylink.facts.key_digests for name, server in inventory.servers.items()
              for group_id, files in server.groups.items() if files.sylink.facts is not None}
    newest_keys = {g: newest(held).facts.key_digests for g, held in group_copies(inventory).items()}
    return outbox, newest_keys


def certificate_times(inventory: Inventory) -> tuple[CertificateTime, ...]:
    """Each watched server's current certificate: key and notBefore (rule 3)."""
    out = []
    for name, server in inventory.servers.items():
        observed = server.server_certificate
        if observed is not None and observed.facts is not None:
            leaf = observed.facts.leaf
            out.append(CertificateTime(name, leaf.public_key_sha256, leaf.not_before))
    return tuple(out)
