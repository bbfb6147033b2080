"""The admin's remediation list and the findings as JSON, on the lab incident; rows from per-client or grouped findings."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable

from sepm_exporter.judge.findings import Finding, Severity, findings
from sepm_exporter.judge.remediation import FIXES, alert_of, rows, runbook, stranded
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter

Scan = Callable[[estate.Lab], Exporter]


def _incident(lab: estate.Lab, scan: Scan) -> Exporter:
    scan(lab)  # the exporter knew the old keys and files before the renewal
    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    lab.pull(0.5)
    return scan(lab)


def test_stranded_clients_with_the_file_each_needs(lab: estate.Lab, scan: Scan) -> None:
    exporter = _incident(lab, scan)
    found = stranded(exporter.scanner.inventory, exporter.derived.verdicts)
    assert len(found) == 6 and {s.status for s in found} == {"untrusted"}
    for client in found:
        assert client.group_id == lab.state.clients[client.client]
        assert client.group_file == str(lab.sylink_path(client.server, client.group_id))
        assert lab.sylink_path(client.server, client.group_id).read_bytes() == lab.sylink_path("SEPM1", client.group_id).read_bytes()


def test_no_file_is_named_before_the_outbox_embeds_a_current_key(lab: estate.Lab, scan: Scan) -> None:
    scan(lab)
    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)  # server.crt renewed on both; the outboxes still embed the old keys
    exporter = scan(lab)
    found = stranded(exporter.scanner.inventory, exporter.derived.verdicts, exporter.history)
    assert len(found) == 12 and {s.status for s in found} == {"untrusted"}
    assert {s.group_file for s in found} == {""}, "every outbox file embeds no current key: importing it fixes nothing"
    assert all("wait for SEPM to rewrite the outbox" in s.note and "restore the old key" in s.note for s in found)
    lab.publish("SEPM1")  # SEPM1 rewrites its outbox; SEPM2's copy still lags
    exporter = scan(lab)
    found = stranded(exporter.scanner.inventory, exporter.derived.verdicts, exporter.history)
    assert {(s.server, s.note) for s in found} == {("SEPM1", "")}
    assert {s.group_file for s in found} == {str(lab.sylink_path("SEPM1", g.group_id)) for g in lab.state.groups}


def test_check_stranded_csv_and_json_and_findings_json(lab: estate.Lab, scan: Scan) -> None:
    _incident(lab, scan)

    def check(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sepm_exporter", "check", "--config", str(lab.config_path), *extra],
                              capture_output=True, text=True, timeout=120)

    as_csv = check("--stranded", "--format", "csv")
    assert as_csv.returncode == 2, "exit codes as documented: 2 when something is critical"
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(records) == 6 and list(records[0]) == ["client", "group_id", "status", "since", "server", "group_file", "group_name", "note",
        "evidence", "rule", "reason"]
    assert {r["group_name"] for r in records} == {g.name for g in lab.state.groups}, "groups named where known"
    as_json = json.loads(check("--stranded", "--format", "json").stdout)
    assert [r["client"] for r in as_json] == [r["client"] for r in records]
    assert all(r["group_file"].endswith("SyLink.xml") and r["since"].endswith("+00:00") for r in as_json)

    result = check("--format", "json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["status"] == "critical"
    groups = [f for f in document["findings"] if f["alert"] == "SEPMClientServerKeyUntrusted"]
    assert sum(f["client_count"] for f in groups) == 6 and all(f["subject"].startswith("group ") for f in groups)
    for finding in document["findings"]:
        assert set(finding) >= {"severity", "alert", "subject", "message", "since", "clients", "fix", "runbook"}
        assert finding["severity"] in ("critical", "warning") and finding["fix"]
    assert all(f["since"] is not None for f in groups)
    assert check("--format", "json").returncode == 2


def test_rows_work_with_grouped_findings_too(lab: estate.Lab, scan: Scan) -> None:
    exporter = _incident(lab, scan)
    found = findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
    per_client = rows(found, exporter.history)
    grouped = [Finding(r.severity, r.subject, r.message, alert=r.alert, since=r.since, clients=r.clients, fix=r.fix)
               for r in per_client]
    assert rows(grouped, exporter.history) == per_client


def test_every_alert_has_a_fix_and_a_runbook() -> None:
    from pathlib import Path

    root = Path(__file__).parent.parent.parent
    for alert in FIXES:
        assert (root / runbook(alert)).is_file(), alert
    assert alert_of(Finding(Severity.WARNING, "file SEPM1:x", "too_large")) == "SEPMExporterFileErrors"
    assert alert_of(Finding(Severity.CRITICAL, "server A", "certificate expires in 3.0 days")) == "SEPMServerCertificateExpiryImminent"


def test_failing_client_files_fold_into_one_row_per_reason(lab: estate.Lab, scan: Scan) -> None:
    for client in ("WS-0001", "WS-0002", "WS-0003"):
        lab.write_hostile("empty", lab.client_path(client))
    exporter = scan(lab)
    inventory = exporter.scanner.inventory
    found = findings(inventory, exporter.history, exporter.derived, exporter.clock())
    table = rows(found, exporter.history, inventory)
    (row,) = [r for r in table if r.subject == "client files"]
    assert row.clients == ("WS-0001", "WS-0002", "WS-0003") and row.alert == "SEPMExporterFileErrors"
