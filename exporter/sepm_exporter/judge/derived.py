"""What the runtime concluded from the inventory at its last refresh: parity, key match, verdicts, counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sepm_exporter.judge.api_clients import ApiJudgement
from sepm_exporter.judge.clients import ClientVerdict


@dataclass
class Derived:
    """Kept up to date by the writer, one change at a time; readers get it through a Report."""

    replica_mismatch: dict[str, bool] = field(default_factory=dict)  # group -> partners disagree
    key_match: dict[tuple[str, str], bool] = field(default_factory=dict)  # (server, group) -> embeds its key
    verdicts: dict[str, ClientVerdict] = field(default_factory=dict)  # client -> verdict
    group_counts: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (group, group set, state) -> clients
    api: ApiJudgement | None = None  # clients known only through SEPM's records (evidence `api`)
