"""What clients known through SEPM's records add to the report: findings, the stranded list, the plan.

Kept apart from the file side's findings so each says its evidence: an API client is named with
`evidence: api` and the rule that gave its key set, wherever it is listed.
"""

from __future__ import annotations

from collections.abc import Mapping

from sepm_exporter.judge.api_clients import ApiJudgement
from sepm_exporter.judge.clients import ClientStatus
from sepm_exporter.judge.findings import Finding, Severity, _make, group_subject, plural
from sepm_exporter.judge.history import History
from sepm_exporter.judge.keysets import Rule
from sepm_exporter.judge.parity import group_copies, group_names
from sepm_exporter.judge.remediation import StrandedClient, file_note
from sepm_exporter.sources.inventory import Inventory

RULE_WORDS = {
    Rule.CURRENT: "they hold their group's current profile, which embeds no current server key",
    Rule.REMEMBERED: "the profile they hold (seen before by this exporter) embeds no current server key",
    Rule.OLDER_THAN_CERTIFICATE: "their profile was made before every watched server's current certificate",
}


def findings(judged: ApiJudgement | None, history: History) -> list[Finding]:
    """SEPMClientServerKeyUntrusted for API-judged untrusted clients, one finding per group."""
    if judged is None:
        return []
    untrusted: dict[str, list[str]] = {}
    rules: dict[str, set[Rule]] = {}
    for client in judged.needing_action():
        if client.verdict.trusted is False:
            untrusted.setdefault(client.computer.group_id, []).append(client.name)
            rules.setdefault(client.computer.group_id, set()).add(client.verdict.rule)
    changes = [h.changed_at for h in history.servers.values() if h.changed_at is not None and h.previous is not None]
    out = []
    for group_id, names in sorted(untrusted.items()):
        why = "; ".join(RULE_WORDS[r] for r in sorted(rules[group_id]))
        out.append(_make("SEPMClientServerKeyUntrusted", Severity.CRITICAL, group_subject(group_id),
                         f"{plural(len(names), 'client')} (evidence: api, SEPM's records) "
                         f"{'embeds' if len(names) == 1 else 'embed'} no current key of any server: "
                         f"{why}; {'it cannot' if len(names) == 1 else 'they cannot'} connect",
                         max(changes) if changes else None, tuple(sorted(names))))
    return out


def stranded(judged: ApiJudgement | None, files: Mapping[str, tuple[str, str]], inventory: Inventory) -> list[StrandedClient]:
    """API clients not on their group's current, trusted profile; `files`: group -> (server, file to import)."""
    if judged is None:
        return []
    names = group_names(group_copies(inventory))
    out = []
    for client in judged.needing_action():
        verdict = client.verdict
        if verdict.status is ClientStatus.UNKNOWN and verdict.rule is Rule.CURRENT:
            continue  # on the current profile, only its trust unknown: nothing to import
        group_id = client.computer.group_id
        server, path = files.get(group_id, ("", ""))
        out.append(StrandedClient(client.name, group_id, verdict.status.value, None, server, path,
                                  names.get(group_id, ""), file_note(inventory, group_id, path),
                                  evidence="api", rule=verdict.rule.value, reason=verdict.reason.value))
    return out


def counts(judged: ApiJudgement | None) -> dict[tuple[str, str, str], int]:
    """The API clients' counts in the report's (group, group set, state) shape."""
    if judged is None:
        return {}
    return {(group_id, "", state): n for (group_id, state), n in judged.counts.items()}
