"""What the landing page and `check` show: made by the writer on demand, read without a lock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sepm_exporter.judge import api_report, renewal
from sepm_exporter.judge.derived import Derived
from sepm_exporter.judge.findings import Finding, ServerLine, findings, server_lines, with_verdict
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import group_copies, group_names
from sepm_exporter.judge.remediation import Row, StrandedClient, import_files, rows, stranded
from sepm_exporter.judge.renewal import RenewalPlan
from sepm_exporter.sources.inventory import Inventory

SourceFindings = Callable[[Inventory], list[Finding]]  # a background source's last round, judged against the inventory


@dataclass(frozen=True)
class Root:
    """A watched root as the last scan saw it."""

    kind: str  # "server NAME" or "collection"
    path: str
    up: bool


@dataclass(frozen=True)
class Report:
    """Everything the landing page and `check` show, as of `at`."""

    at: float
    servers: list[ServerLine]
    findings: list[Finding]  # worst first, background sources' included
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (group, group set, state) -> clients
    rows: list[Row] = field(default_factory=list)  # one per subject the on-call acts on
    stranded: list[StrandedClient] = field(default_factory=list)
    replica_mismatch: dict[str, bool] = field(default_factory=dict)
    key_match: dict[tuple[str, str], bool] = field(default_factory=dict)
    group_names: dict[str, str] = field(default_factory=dict)  # group ID -> PreferredGroup of its file
    key_changed: dict[str, float] = field(default_factory=dict)  # server -> when its key last changed
    roots: list[Root] = field(default_factory=list)
    plan: RenewalPlan | None = None  # what a new-key renewal of each server would strand, and the safe order
    last_scan: float = 0.0
    scan_duration: float = 0.0
    last_change: float = 0.0  # when the exporter last saw a watched file change


@dataclass(frozen=True)
class State:
    """The writer's state a report is made from (all of it read under the writer lock)."""

    inventory: Inventory
    history: History
    derived: Derived
    by_canonical: Mapping[str, set[str]]
    sources: Mapping[str, SourceFindings]
    last_scan: float
    scan_duration: float
    last_change: float = 0.0


def make_report(state: State, now: float) -> Report:
    inventory, history, derived = state.inventory, state.history, state.derived
    plan = renewal.plan_for(inventory, history, derived.verdicts, state.by_canonical, api=derived.api)
    found = findings(inventory, history, derived, now, plan) + api_report.findings(derived.api, history)
    for source in sorted(state.sources):
        found += [with_verdict(f) for f in state.sources[source](inventory)]
    found.sort(key=lambda f: -f.severity)
    roots = [Root(f"server {name}", str(s.config.root), s.root_up) for name, s in inventory.servers.items()]
    roots += [Root("collection", str(c.path), c.root_up) for c in inventory.collections.values()]
    counts = dict(derived.group_counts)
    for key, n in api_report.counts(derived.api).items():  # each client counted once: a file wins over its record
        counts[key] = counts.get(key, 0) + n
    listed = stranded(inventory, derived.verdicts, history) + api_report.stranded(
        derived.api, import_files(inventory, history), inventory)
    return Report(
        at=now, servers=server_lines(inventory, now), findings=found, counts=counts,
        rows=rows(found, history, inventory), stranded=sorted(listed, key=lambda s: (s.group_id, s.client)),
        replica_mismatch=dict(derived.replica_mismatch), key_match=dict(derived.key_match),
        group_names=group_names(group_copies(inventory)),
        key_changed={name: h.changed_at for name, h in history.servers.items() if h.changed_at is not None},
        roots=roots, plan=plan,
        last_scan=state.last_scan, scan_duration=state.scan_duration, last_change=state.last_change,
    )
