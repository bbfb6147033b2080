"""Severity follows consequence: what a key change and lagging clients are, by what the exporter can see."""

from __future__ import annotations

from pathlib import Path

from sepm_exporter.judge.findings import Severity, findings
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config


def judged(config: Path) -> list[tuple[str, Severity, str, str]]:
    exporter = Exporter(load_config(config))
    exporter.full_scan()
    found = findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
    return [(f.alert, f.severity, f.subject, f.message) for f in found]


def key_changes(found: list[tuple[str, Severity, str, str]]) -> list[tuple[Severity, str, str]]:
    return [(severity, subject, message) for alert, severity, subject, message in found if alert == "SEPMServerKeyChanged"]


def test_a_key_change_pages_only_while_no_client_file_is_seen(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=1, clients=4)
    alone, *_ = estate.write_split_configs(lab, tmp_path / "split")  # SEPM1's exporter: no client collection
    judged(alone), judged(lab.config_path)  # both knew the old key
    lab.renew("SEPM1", new_key=True)
    ((severity, subject, message),) = key_changes(judged(alone))
    assert (severity, subject) == (Severity.CRITICAL, "server SEPM1")
    assert ("this exporter sees no client (no client file, no computer in SEPM's records): "
            "whether clients are stranded cannot be told here") in message
    ((severity, _, message),) = key_changes(judged(lab.config_path))
    assert severity == Severity.WARNING and "its new key is in 0 of the 4 clients seen (0%)" in message
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    lab.pull(1.0)
    found = judged(lab.config_path)
    assert key_changes(found) == [], "full recovery: every client seen embeds the new key, nothing is left to say"
    assert not [f for f in found if f[1] == Severity.CRITICAL]


def test_lagging_clients_that_still_trust_a_key_are_a_warning_whatever_the_share(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=1, clients=4)
    judged(lab.config_path)
    lab.drift("SEPM2", lab.state.groups[0].group_id)  # one partner's copy moves on alone
    lab.age(3600)
    found = judged(lab.config_path)
    stale = [(severity, message) for alert, severity, _, message in found if alert == "SEPMClientSyLinkStale"]
    assert stale == [(Severity.WARNING, "4 clients (100% of the group) hold an older SyLink.xml")]
    assert not [f for f in found if f[1] == Severity.CRITICAL]
