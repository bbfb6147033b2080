"""The verdict table in judge/findings.py and the shipped rules name the same alerts, severities and holds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sepm_exporter.judge.findings import VERDICTS, Severity, alert_subject

ALERTS = Path(__file__).parent.parent.parent / "alerts"
RULES = [ALERTS / "sepm-exporter.rules.yml", ALERTS / "served.rules.yml"]  # the rules the table mirrors
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> float:
    return float(sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", text)))


def shipped() -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[(rule["alert"], rule["labels"]["severity"])] = seconds(str(rule.get("for", "0s")))
    return out


def test_every_rule_has_its_row_and_the_same_hold() -> None:
    table = {(v.alert, v.severity.name.lower()): v.hold_seconds for v in VERDICTS}
    assert table == shipped()


def test_every_row_has_words_for_each_column() -> None:
    for verdict in VERDICTS:
        assert verdict.what and verdict.hold and verdict.clears and verdict.fix, verdict.alert
        assert verdict.severity in (Severity.WARNING, Severity.CRITICAL)


def test_alert_subjects_match_the_finding_subjects() -> None:
    assert alert_subject("SEPMServerKeyChanged", {"server": "SEPM1", "site": "tokyo"}) == "server SEPM1"
    assert alert_subject("SEPMClientSyLinkStale", {"group_id": "A"}) == "group A"
    assert alert_subject("SEPMClientSyLinkStale", {"group_id": "A", "group_set": "A,B"}) == "groups A,B"
    assert alert_subject("SEPMClientServerKeyUntrusted", {}) == "clients of no group"
    assert alert_subject("SEPMSyLinkServerKeyMismatch", {"group_id": "A", "server": "SEPM2"}) == "group A on SEPM2"
    assert alert_subject("SEPMExporterFileErrors", {"client": "WS-1", "file": "WS-1/SyLink.xml"}) == "file WS-1:WS-1/SyLink.xml"
    assert alert_subject("SEPMExporterRootDown", {"client_root": "/srv/sylink"}) == "client root /srv/sylink"


TARGET_RULES = ALERTS / "exporter.rules.yml"  # the scrape of the exporter: `check` is the exporter, it has no finding


def test_the_rules_about_the_exporters_target_stay_outside_the_table() -> None:
    groups = yaml.safe_load(TARGET_RULES.read_text(encoding="utf-8"))["groups"]
    names = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    assert {"SEPMExporterDown", "SEPMExporterAbsent"} <= names
    assert not names & {v.alert for v in VERDICTS}
    assert TARGET_RULES not in RULES
