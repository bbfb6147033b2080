"""The shipped rules: promtool accepts them, every alert has a runbook and a README row."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).parent.parent.parent
RULES = TOP / "alerts" / "sepm-exporter.rules.yml"
RULE_FILES = sorted((TOP / "alerts").glob("*.rules.yml"))  # every area's own file
CONTRACT = {
    "SEPMServerCertificateExpiringSoon", "SEPMServerCertificateExpiryImminent", "SEPMServerCertificateExpired",
    "SEPMServerCertificateWeakSignature", "SEPMServerKeyChanged", "SEPMSyLinkServerKeyMismatch",
    "SEPMSyLinkReplicaMismatch", "SEPMClientSyLinkStale", "SEPMClientServerKeyUntrusted",
    "SEPMExporterFileErrors", "SEPMExporterRootDown",
}
CONTRACT |= {"SEPMClientsOffline", "SEPMCertificateSwapNotReady", "SEPMReplicationFailing",
             "SEPMDatabaseCertificateExpiringSoon", "SEPMAPIDown"}  # alerts/api.rules.yml
CONTRACT |= {"SEPMServedCertificateMismatch", "SEPMKeystoreKeyMismatch", "SEPMProbeDown"}  # alerts/served.rules.yml
EXTRA = {"SEPMServerCertificateWeakKey"}  # beyond the contract: a short RSA/DSA key that is not SHA-1 signed
EXTRA |= {"SEPMExporterDown", "SEPMExporterAbsent", "SEPMExporterScrapeSlow", "SEPMExporterNotReady"}  # alerts/exporter.rules.yml
RUNBOOK_TEMPLATE = ('{{ with query "max by (url) (sepm_exporter_runbook_base_info)" }}{{ . | first | label "url" }}'
                    "{{ else }}https://github.com/sepm-exporter/sepm-exporter/blob/main/docs/runbooks/{{ end }}")


def alerts() -> list[dict[str, object]]:
    groups = [g for path in RULE_FILES for g in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_contract_alert_is_shipped_with_severity_and_annotations() -> None:
    rules = alerts()
    assert {r["alert"] for r in rules} == CONTRACT | EXTRA
    for rule in rules:
        labels, annotations = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        if not str(rule["expr"]).startswith("absent("):  # absent() has no labels to name: there is no target
            assert "{{ $labels." in str(annotations["description"]), rule["alert"]


def test_runbook_links_resolve_to_files() -> None:
    for rule in alerts():
        url = str(rule["annotations"]["runbook_url"])  # type: ignore[index]
        assert url.startswith(RUNBOOK_TEMPLATE), "the base is the exporter's own (sepm_exporter_runbook_base_info)"
        page = TOP / "docs" / "runbooks" / url.removeprefix(RUNBOOK_TEMPLATE)
        assert page.is_file(), url
        assert page.name == f"{rule['alert']}.md"
        assert "## Fix" in page.read_text(encoding="utf-8")


def test_readme_alert_table_matches_the_rules() -> None:
    readme = (TOP / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Alerts") : readme.index("## Grafana")]
    assert set(re.findall(r"^\| `(SEPM[A-Za-z]+)` \|", section, re.M)) == CONTRACT | EXTRA


def test_heartbeat_rules_use_no_fixed_for() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    recorded = {r["record"]: str(r["expr"]) for g in groups for r in g["rules"] if "record" in r}
    for rule in alerts():
        if rule["alert"] in ("SEPMSyLinkServerKeyMismatch", "SEPMSyLinkReplicaMismatch", "SEPMClientSyLinkStale"):
            expr = str(rule["expr"])
            expanded = expr + "".join(body for name, body in recorded.items() if name in expr)
            assert "for" not in rule and "heartbeat_window" in expanded


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_checks_and_unit_tests_pass() -> None:
    rule_files = sorted(str(p) for p in (TOP / "alerts").glob("*.rules.yml"))  # every area's file
    subprocess.run(["promtool", "check", "rules", *rule_files], check=True, capture_output=True)
    result = subprocess.run(
        ["promtool", "test", "rules", *sorted(str(p) for p in (TOP / "alerts" / "tests").glob("*.yml"))],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if shutil.which("amtool"):
        subprocess.run(["amtool", "check-config", str(TOP / "alerts" / "alertmanager.example.yml")],
                       check=True, capture_output=True)
