"""alerts/served.rules.yml: the three served-certificate alerts, with annotations, runbooks and tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).parent.parent.parent
RULES = TOP / "alerts" / "served.rules.yml"
ALERTS = {"SEPMServedCertificateMismatch", "SEPMKeystoreKeyMismatch", "SEPMProbeDown"}
RUNBOOK_TEMPLATE = ('{{ with query "max by (url) (sepm_exporter_runbook_base_info)" }}{{ . | first | label "url" }}'
                    "{{ else }}https://github.com/sepm-exporter/sepm-exporter/blob/main/docs/runbooks/{{ end }}")


def rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_three_alerts_carry_severity_annotations_and_a_runbook() -> None:
    found = rules()
    assert {r["alert"] for r in found} == ALERTS
    readme = (TOP / "README.md").read_text(encoding="utf-8")
    for rule in found:
        labels, annotations = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in ("warning", "critical")
        assert {"summary", "description", "runbook_url"} <= set(annotations)
        assert "{{ $labels.server }}" in str(annotations["description"])
        url = str(annotations["runbook_url"])
        page = TOP / "docs" / "runbooks" / url.removeprefix(RUNBOOK_TEMPLATE)
        assert url.startswith(RUNBOOK_TEMPLATE) and page.name == f"{rule['alert']}.md"
        assert "## Fix" in page.read_text(encoding="utf-8")
        assert f"| `{rule['alert']}` |" in readme


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_unit_tests_pass() -> None:
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True, capture_output=True)
    result = subprocess.run(["promtool", "test", "rules", str(TOP / "alerts" / "tests" / "served.test.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
