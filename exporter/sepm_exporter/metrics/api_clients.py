"""Clients known through SEPM's records alone (evidence `api`): their verdicts, counted and named.

Per-client series follow `clients.series` as the file side's do: by default only for clients that
need action (untrusted, stale, unknown), at most `clients.series_limit` of them: a healthy
100,000-computer estate adds no per-client series at all; the
counts stay whole (`sepm_group_clients{evidence="api"}`), and the report, the page and
`check --stranded` name every client whatever the limit.
"""

from __future__ import annotations

from sepm_exporter.judge.api_clients import ApiJudgement
from sepm_exporter.judge.clients import ClientStatus
from sepm_exporter.judge.keysets import Rule, UnknownReason
from sepm_exporter.metrics.family import Family, Sample

SERIES_LIMIT = 20_000
TRUST_VALUE: dict[bool | None, float] = {True: 1.0, False: 0.0, None: -1.0}

FAMILIES: tuple[Family, ...] = (
    Family("sepm_api_client_key_trusted", "gauge", ("client", "group_id", "rule"),
           "For a client known only through SEPM's records (as clients.series selects: by default those needing action): "
           "1 trusted, 0 untrusted, -1 unknown; "
           "rule says how its key set was inferred (current, remembered, older_than_certificate, unknown)."),
    Family("sepm_api_client_verdicts", "gauge", ("rule", "state"),
           "Clients known only through SEPM's records, by the rule that gave their key set and their state."),
    Family("sepm_api_client_unknown", "gauge", ("reason",),
           "Computers whose key set SEPM's record cannot tell, by reason (bad serial, no group, future profile, ...); "
           "duplicate_name counts computers sharing a name (each is still its own client)."),
    Family("sepm_api_clients_judged_by_file", "gauge", (),
           "Computers SEPM lists whose own SyLink.xml is read: judged by the file, not counted again."),
    Family("sepm_api_clients_without_failover", "gauge", (),
           "Computers on SEP 14.2 or 14.2.1 (agentVersion below 14.2.5323): they cannot use failover (KB 187099)."),
    Family("sepm_api_client_series_dropped", "gauge", (),
           "API clients beyond clients.series_limit: counted, named in the report, no series."),
)


def samples(judged: ApiJudgement | None, mode: str = "problems", limit: int = SERIES_LIMIT) -> dict[str, list[Sample]]:
    """`mode` and `limit` are the file side's `clients.series` and `clients.series_limit`: API clients go
    through the same selection (problems: only those needing action; all: every one; none: no series)."""
    out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES}
    if judged is None:
        return out
    shown = 0
    dropped = 0
    chosen = judged.needing_action() if mode == "problems" else iter(judged) if mode == "all" else iter(())
    for client in chosen:
        if shown >= limit:
            dropped += 1
            continue
        shown += 1
        out["sepm_api_client_key_trusted"].append(
            ((client.name, client.computer.group_id, client.verdict.rule.value), TRUST_VALUE[client.verdict.trusted]))
    tallies: dict[tuple[str, str], int] = {(r.value, s.value): 0 for r in Rule for s in ClientStatus}
    for index in judged.verdict_of:
        verdict = judged.verdicts[index][1]
        key = (verdict.rule.value, verdict.status.value)
        tallies[key] = tallies.get(key, 0) + 1
    out["sepm_api_client_verdicts"] = [(key, float(n)) for key, n in sorted(tallies.items())]
    reasons = {r.value: 0 for r in UnknownReason if r.value} | {"duplicate_name": 0}
    reasons.update(judged.reasons)
    out["sepm_api_client_unknown"] = [((reason,), float(n)) for reason, n in sorted(reasons.items())]
    out["sepm_api_clients_judged_by_file"] = [((), float(judged.by_file))]
    out["sepm_api_clients_without_failover"] = [((), float(judged.old_agents))]
    out["sepm_api_client_series_dropped"] = [((), float(dropped))]
    return out
