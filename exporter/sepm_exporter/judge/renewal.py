"""Before the click: which clients a new-key renewal would strand, per server and for all at once.

A client survives a server's new key when it can still verify another server it lists: it fails
over to it and picks up the replicated file that embeds the new key (KB 187099, the multi-server
failover method). So renewing one partner at a time, waiting between them for the clients to pull,
strands nobody; renewing all at once strands every client. Everything here is pure: it judges the
client files the exporter already holds against the watched servers' keys, with the same
three-valued trust as the client verdicts (`judge/clients.py`): a client whose fate cannot be told
from here is counted as unknown, never as safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from sepm_exporter.judge.api_clients import ApiJudgement
from sepm_exporter.judge.clients import ClientVerdict, TrustBasis, embedded, listed, trust_basis
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import current_server_keys, group_copies, newest
from sepm_exporter.sepm.sylink import SyLinkFacts
from sepm_exporter.sources.inventory import Inventory

ALL = "*"  # the `server` label of the all-watched-servers-at-once figure
WEAK_HASHES = frozenset({"sha1", "md5", "md2", "md4"})
STRONG_KEY_BITS = 2048
FAILOVER_CAVEAT = ("Failover needs clients that can use it: Broadcom KB 187099 warns that 14.2 and 14.2.1 clients "
                   "cannot; which clients run those versions is not known to this exporter without an API source.")


@dataclass(frozen=True)
class Holding:
    """Clients that hold one file (one canonical version): they share its fate."""

    certificates: tuple[tuple[str, str | None], ...]  # (Name, key digest) of its ServerCertList
    clients: Collection[str]  # not copied: the runtime's own set, so a refresh costs O(files), not O(clients)
    trusted: bool | None  # now, from the verdict
    rescue: frozenset[str]  # keys embedded in the group file a pull would bring (empty: no group)


def _names(parts: tuple[Collection[str], ...]) -> tuple[str, ...]:
    return tuple(sorted(name for part in parts for name in part))


@dataclass(frozen=True)
class WhatIf:
    """Renewing `servers` with a new key now: who is left with no verifiable server.

    Kept as the holdings' client collections; counts are O(files), names are sorted when asked for.
    """

    servers: tuple[str, ...]
    stranded_parts: tuple[Collection[str], ...]
    unknown_parts: tuple[Collection[str], ...]
    rescued_parts: tuple[Collection[str], ...]  # stranded clients a pull of their group's current file would save
    already_parts: tuple[Collection[str], ...] = ()  # clients that trust no current key now: the outage is already here
    seen: int = 0  # clients whose file was judged; 0: nothing can be told

    @property
    def already(self) -> tuple[str, ...]:
        return _names(self.already_parts)

    @property
    def already_count(self) -> int:
        return sum(len(p) for p in self.already_parts)

    @property
    def stranded(self) -> tuple[str, ...]:
        return _names(self.stranded_parts)

    @property
    def unknown(self) -> tuple[str, ...]:
        return _names(self.unknown_parts)

    @property
    def stranded_count(self) -> int:
        return sum(len(p) for p in self.stranded_parts)

    @property
    def unknown_count(self) -> int:
        return sum(len(p) for p in self.unknown_parts)

    @property
    def status(self) -> str:
        """outage (clients already trust no current key), unknown (no client seen, or nobody stranded among
        clients whose keys cannot all be told), safe (nobody stranded, every client's keys known), wait (the
        outbox already holds the file that saves them), or unsafe. Never safe during an outage."""
        if self.already_count:
            return "outage"
        if not self.seen:
            return "unknown"
        stranded = self.stranded_count
        if not stranded:
            return "unknown" if self.unknown_count else "safe"
        return "wait" if sum(len(p) for p in self.rescued_parts) == stranded else "unsafe"


@dataclass(frozen=True)
class Rollout:
    """After a key change: how many clients already embed the server's current key."""

    server: str
    changed_at: float | None
    holding: int
    total: int

    @property
    def share(self) -> float:
        return self.holding / self.total if self.total else 1.0


@dataclass(frozen=True)
class ServerPlan:
    """One server's line of the plan."""

    what_if: WhatIf
    rollout: Rollout
    keep_key: str  # the alternative that strands nobody, and its caveat


@dataclass(frozen=True)
class RenewalPlan:
    """Per server, all at once, the safe order, and what cannot be known here."""

    servers: tuple[ServerPlan, ...]
    everything: WhatIf
    order: tuple[str, ...]
    advice: str
    caveat: str = FAILOVER_CAVEAT


def holdings(files: Mapping[str, tuple[SyLinkFacts, Iterable[str]]], verdicts: Mapping[str, ClientVerdict],
             rescue: Mapping[str, frozenset[str]], sort: bool = True) -> list[Holding]:
    """From canonical hash -> (its facts, the clients holding it), and group -> keys of its current file.

    `sort=False` keeps the clients in set order: the metrics need counts, not a sorted 100,000-name list.
    """
    out = []
    for facts, names in files.values():
        clients: Collection[str] = tuple(sorted(names)) if sort else names if isinstance(names, Collection) else tuple(names)
        if not clients:
            continue
        verdict = verdicts.get(next(iter(clients)))
        trusted = verdict.trusted if verdict is not None else None
        group_keys = rescue.get(verdict.group_id, frozenset()) if verdict is not None and verdict.group_id else frozenset()
        out.append(Holding(embedded(facts), clients, trusted, group_keys))
    return out


def _after(certificates: tuple[tuple[str, str | None], ...], basis: TrustBasis, remaining: frozenset[str]) -> bool | None:
    """Trust once the renewed servers' keys are gone: True, False (stranded) or None (unknown)."""
    if not basis.current:
        return None
    if any(d is not None and d in remaining for _, d in certificates):
        return True
    if certificates and all(listed(name, digest, basis) for name, digest in certificates):
        return False
    return None


def what_if(held: list[Holding], basis: TrustBasis, keys: Mapping[str, str], servers: Iterable[str]) -> WhatIf:
    """Renewing `servers` with new keys now. Clients already untrusted are counted apart (`already`): not this
    renewal's doing, but an outage in progress."""
    renewed = tuple(sorted(set(servers)))
    remaining = frozenset(key for name, key in keys.items() if name not in renewed)
    stranded: list[Collection[str]] = []
    unknown: list[Collection[str]] = []
    rescued: list[Collection[str]] = []
    already: list[Collection[str]] = []
    for holding in held:
        if holding.trusted is False:
            already.append(holding.clients)
            continue
        after = _after(holding.certificates, basis, remaining)
        if after is False:
            stranded.append(holding.clients)
            if holding.rescue & remaining:
                rescued.append(holding.clients)
        elif after is None:
            unknown.append(holding.clients)
    return WhatIf(renewed, tuple(stranded), tuple(unknown), tuple(rescued), tuple(already),
                  sum(len(h.clients) for h in held))


def rollout(held: list[Holding], keys: Mapping[str, str], history: History, server: str) -> Rollout:
    key = keys.get(server)
    total = sum(len(h.clients) for h in held)
    holding = sum(len(h.clients) for h in held if key is not None and any(d == key for _, d in h.certificates))
    entry = history.servers.get(server)
    changed = entry.changed_at if entry is not None and entry.previous is not None else None
    return Rollout(server, changed, holding, total)


def keep_key_note(signature_hash: str, key_bits: int) -> str:
    """The alternative that strands nobody, with what it does and does not fix."""
    base = "renew keeping the key (untick 'generate new key'): strands nobody"
    if signature_hash in WEAK_HASHES and key_bits >= STRONG_KEY_BITS:
        return base + f"; it also re-signs with SHA-256, which clears the {signature_hash} warning"
    if signature_hash in WEAK_HASHES or 0 < key_bits < STRONG_KEY_BITS:
        return (base + f"; but the {key_bits}-bit key stays weak: the weak-signature/weak-key warning only goes with a "
                "new key, so plan the one-at-a-time rollout")
    return base


def plan(held: list[Holding], basis: TrustBasis, keys: Mapping[str, str], history: History,
         certificates: Mapping[str, tuple[str, int]]) -> RenewalPlan:
    """The whole plan. `certificates`: server -> (signature hash, key bits) of its current certificate."""
    lines = []
    for server in sorted(keys):
        signature_hash, bits = certificates.get(server, ("", 0))
        lines.append(ServerPlan(what_if(held, basis, keys, [server]), rollout(held, keys, history, server),
                                keep_key_note(signature_hash, bits)))
    everything = what_if(held, basis, keys, keys)
    order = tuple(p.what_if.servers[0] for p in sorted(lines, key=lambda p: (p.what_if.stranded_count,
                                                                              p.what_if.unknown_count, p.what_if.servers[0])))
    return RenewalPlan(tuple(lines), everything, order, advice(tuple(lines), everything))


def _count(n: int, more: bool = False) -> str:
    """"1 client", "3 clients"; `more`: "3 more clients" (beside the ones stranded already)."""
    return f"{n} {'more ' if more else ''}client{'s' if n != 1 else ''}"


def _names_of(plans: Iterable[ServerPlan]) -> str:
    return ", ".join(p.what_if.servers[0] for p in plans)


def advice(lines: tuple[ServerPlan, ...], everything: WhatIf) -> str:
    """The safe order in words, true in every state: before, during a rollout, in an outage, after."""
    if not lines:
        return "no server key is known yet"
    if everything.already_count:
        n = everything.already_count
        return (f"outage: {_count(n)} already {'trusts' if n == 1 else 'trust'} no current key and cannot connect; bring "
                "them back first (import a SyLink.xml that embeds a current key on them: check --stranded; or restore "
                "the old key), and renew no server with a new key until they are back")
    if not everything.seen:
        return ("no client file is seen: what a new key would strand cannot be told here; renew keeping the key, "
                "or give the exporter the clients' SyLink.xml first")
    rolling = [p for p in lines if p.rollout.changed_at is not None and p.rollout.total and p.rollout.share < 1.0]
    done = [p for p in lines if p.rollout.changed_at is not None and p.rollout.total and p.rollout.share >= 1.0]
    pending = [p for p in lines if p not in rolling and p not in done]
    if rolling:
        progress = ", ".join(f"{p.rollout.server}'s new key is in {p.rollout.holding} of {_count(p.rollout.total)} "
                             f"({p.rollout.share:.0%})" for p in rolling)
        then = (f"; renewing {_names_of(pending)} becomes safe when the rollout reaches 100 % (its stranded figure "
                "falls to 0)") if pending else "; wait until it reaches 100 %"
        return f"wait: {progress}{then}"
    prefix = f"{_names_of(done)}: renewed with a new key that every client embeds; " if done else ""
    if not pending:
        return prefix + "nothing left to renew"
    if not everything.stranded_count and not everything.unknown_count:
        return prefix + "renewing every server at once strands no client this exporter sees"
    safe = [p for p in pending if p.what_if.status == "safe"]
    if safe:
        rest = [p for p in pending if p not in safe]
        then = "".join(f", then {p.what_if.servers[0]}" for p in [*safe[1:], *rest])
        return (prefix + f"renew {safe[0].what_if.servers[0]} first; wait until every client embeds its new key "
                f"(rollout 100 %){then}, one at a time, waiting for each rollout; never all at once")
    return prefix + ("no server can be renewed with a new key without stranding clients: renew keeping the key, or "
                     "give the clients a SyLink.xml that embeds a second server's key first (Communication Update Package)")


def api_holdings(judged: ApiJudgement, rescue: Mapping[str, frozenset[str]], sort: bool = True) -> list[Holding]:
    """Clients known through SEPM's records, bundled by verdict (one per group and profile): a key set
    inferred by rule 1 or 2 is judged like a file's; without one (rules 3-4) their fate is unknown."""
    bundles: dict[int, list[str]] = {}
    for index, verdict_index in enumerate(judged.verdict_of):
        bundles.setdefault(verdict_index, []).append(judged.names[index])
    out = []
    for verdict_index, names in bundles.items():
        group_id, verdict = judged.verdicts[verdict_index]
        certificates = tuple(("", key) for key in sorted(verdict.keys)) if verdict.keys else ()
        out.append(Holding(certificates, tuple(sorted(names)) if sort else names, verdict.trusted,
                           rescue.get(group_id, frozenset())))
    return out


def holdings_for(inventory: Inventory, history: History, verdicts: Mapping[str, ClientVerdict],
                 by_canonical: Mapping[str, Iterable[str]] | None = None,
                 sort: bool = True, api: ApiJudgement | None = None) -> tuple[list[Holding], TrustBasis, dict[str, str]]:
    """What `what_if` needs, from what an exporter holds (`by_canonical`: the runtime's canonical -> clients index)."""
    remembered = {name: h.current.public_key_sha256 for name, h in history.servers.items() if h.current}
    keys = current_server_keys(inventory, remembered)
    basis = trust_basis(keys, {name: h.previous.public_key_sha256 for name, h in history.servers.items() if h.previous})
    if by_canonical is None:
        grouped: dict[str, list[str]] = {}
        for name, client in inventory.clients.items():
            if client.sylink.facts is not None:
                grouped.setdefault(client.sylink.facts.canonical_sha256, []).append(name)
        by_canonical = grouped
    files: dict[str, tuple[SyLinkFacts, Iterable[str]]] = {}
    for canonical, names in by_canonical.items():
        for holder in names:
            state = inventory.clients.get(holder)
            if state is not None and state.sylink.facts is not None:
                files[canonical] = (state.sylink.facts, names)
                break
    rescue = {g: newest(held).facts.key_digests for g, held in group_copies(inventory).items()}
    held = holdings(files, verdicts, rescue, sort)
    if api is not None:
        held += api_holdings(api, rescue, sort)
    return held, basis, keys


def plan_for(inventory: Inventory, history: History, verdicts: Mapping[str, ClientVerdict],
             by_canonical: Mapping[str, Iterable[str]] | None = None, sort: bool = True,
             api: ApiJudgement | None = None) -> RenewalPlan:
    """The plan from what an exporter holds: what `check`, the landing page and the metrics show."""
    held, basis, keys = holdings_for(inventory, history, verdicts, by_canonical, sort, api)
    certificates = {}
    for name, server in inventory.servers.items():
        observed = server.server_certificate
        if observed is not None and observed.facts is not None:
            certificates[name] = (observed.facts.leaf.signature_hash, observed.facts.leaf.key_bits)
    found = plan(held, basis, keys, history, certificates)
    if api is not None:
        listed = len(api) + api.by_file
        found = dataclasses.replace(found, caveat=(
            "Failover needs clients that can use it: Broadcom KB 187099 warns that 14.2 and 14.2.1 clients cannot; "
            f"{api.old_agents} of the {listed} computers SEPM lists run those versions (agentVersion below "
            "14.2.5323): before a new-key renewal they need a SyLink.xml that embeds the new key (Communication "
            "Update Package), whatever the order."))
    return found


def now_safe(found: RenewalPlan) -> list[str]:
    """After a partner's key change: which server has become safe to renew, once its rollout is complete."""
    out = []
    for p in found.servers:
        others = [q for q in found.servers if q is not p and q.rollout.changed_at is not None]
        if p.rollout.changed_at is not None and p.rollout.share >= 1.0:
            continue  # renewed already, and its own rollout is complete: nothing to advise
        if p.what_if.status == "safe" and others and all(q.rollout.share >= 1.0 for q in others):
            out.append(f"renewing {p.what_if.servers[0]} is now safe: every client embeds "
                       f"{', '.join(q.what_if.servers[0] for q in others)}'s new key")
    return out


def plan_data(found: RenewalPlan) -> dict[str, object]:
    """The plan as plain data, for `check --format json` and the landing page."""
    return {
        "servers": [
            {
                "server": p.what_if.servers[0],
                "stranded": p.what_if.stranded_count,
                "unknown": p.what_if.unknown_count,
                "status": p.what_if.status,
                "stranded_clients": list(p.what_if.stranded),
                "already_stranded": p.what_if.already_count,
                "rollout": {"holding": p.rollout.holding, "total": p.rollout.total, "share": p.rollout.share,
                            "changed_at": p.rollout.changed_at},
                "keep_key": p.keep_key,
            }
            for p in found.servers
        ],
        "all_at_once": {"stranded": found.everything.stranded_count, "unknown": found.everything.unknown_count,
                        "status": found.everything.status},
        "already_stranded": found.everything.already_count,
        "already_stranded_clients": list(found.everything.already),
        "order": list(found.order),
        "advice": found.advice,
        "now_safe": now_safe(found),
        "caveat": found.caveat,
    }


def _trust(n: int) -> str:
    return "trusts" if n == 1 else "trust"


def _already(w: WhatIf) -> str:
    return f", {w.already_count} already stranded" if w.already_count else ""


def render_plan(found: RenewalPlan) -> list[str]:
    """The `Renewal plan` section of `check`'s text report."""
    out = ["Renewal plan (a new key now):"]
    e = found.everything
    if e.already_count:
        out.append(f"  OUTAGE NOW: {_count(e.already_count)} already {_trust(e.already_count)} no current key and cannot connect")
    for p in found.servers:
        w = p.what_if
        unknown = f", {w.unknown_count} unknown" if w.unknown_count else ""
        out.append(f"  {w.servers[0]}: {_count(w.stranded_count, bool(w.already_count))} stranded{unknown}{_already(w)} "
                   f"({w.status})")
        if p.rollout.changed_at is not None:
            complete = ": complete" if p.rollout.total and p.rollout.share >= 1.0 else ""
            out.append(f"    rollout of its new key: {p.rollout.holding} of {_count(p.rollout.total)} "
                       f"({p.rollout.share:.0%}){complete}")
        out.append(f"    alternative: {p.keep_key}")
    unknown = f", {e.unknown_count} unknown" if e.unknown_count else ""
    out.append(f"  all at once ({', '.join(e.servers)}): {_count(e.stranded_count, bool(e.already_count))} stranded"
               f"{unknown}{_already(e)} ({e.status})")
    out.append(f"  safe order: {found.advice}")
    out += [f"  {line}" for line in now_safe(found)]
    out.append(f"  note: {found.caveat}")
    return out


def render_what_if(found: WhatIf) -> list[str]:
    """`check --renewal`: the what-if for the named servers."""
    names = ", ".join(found.servers)
    lines = [f"Renewing {names} with a new key now would strand {_count(found.stranded_count, bool(found.already_count))} "
             f"({found.status})"]
    if found.already_count:
        lines.append(f"  outage now: {_count(found.already_count)} already {_trust(found.already_count)} no current key "
                     "and cannot connect")
    if found.unknown_count:
        lines.append(f"  {_count(found.unknown_count)} unknown: which keys they hold cannot be told (their file lists a "
                     "server this exporter does not watch, or SEPM's records cannot place their profile)")
    if not found.seen:
        lines.append("  no client is seen: who would be stranded cannot be told here")
    if found.stranded_count:
        ordered = found.stranded
        shown = ", ".join(ordered[:8]) + (f" and {len(ordered) - 8} more" if len(ordered) > 8 else "")
        lines.append(f"  stranded: {shown}")
    return lines


def what_if_data(found: WhatIf) -> dict[str, object]:
    """`check --renewal --format json`: the what-if for the named servers, as plain data."""
    return {"servers": list(found.servers), "stranded": found.stranded_count, "unknown": found.unknown_count,
            "already_stranded": found.already_count, "status": found.status,
            "stranded_clients": list(found.stranded), "already_stranded_clients": list(found.already)}
