"""`check` as a tool reads it: one document per machine format, exit codes as documented, one line per mistake."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sepm_exporter.cli import effective_config, parse_args
from sepm_exporter.commands.serve import external_url
from sepm_exporter.judge.findings import findings
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import ConfigError, load_config


def check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sepm_exporter", "check", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120)


def outage(lab: estate.Lab) -> None:
    """Both partners renewed with a new key, published and replicated; nobody pulled."""
    check(lab.config_path)  # the exporter knew the old keys first (the state file)
    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")


def test_an_unconfigured_renewal_server_is_refused_before_any_report(lab: estate.Lab) -> None:
    for fmt in ("text", "json"):
        result = check(lab.config_path, "--renewal", "SEPM3", "--format", fmt)
        assert result.returncode == 1 and result.stdout == "", result.stdout
        assert result.stderr.strip().splitlines() == ["--renewal: no watched server named SEPM3; watched: SEPM1, SEPM2"]


def test_renewal_json_is_one_document_with_the_what_if_inside(lab: estate.Lab) -> None:
    healthy = check(lab.config_path, "--renewal", "SEPM1", "--format", "json")
    document = json.loads(healthy.stdout)  # the whole of stdout: nothing follows the document
    assert healthy.returncode == 0 and document["renewal_what_if"]["status"] == "safe"
    outage(lab)
    during = check(lab.config_path, "--renewal", "SEPM1", "--format", "json")
    document = json.loads(during.stdout)
    assert during.returncode == 2, "clients are stranded already: never 0 during an outage"
    assert document["renewal_what_if"] == {
        "servers": ["SEPM1"], "stranded": 0, "unknown": 0, "already_stranded": 12, "status": "outage",
        "stranded_clients": [], "already_stranded_clients": sorted(lab.state.clients)}
    plan = document["renewal_plan"]
    assert {s["status"] for s in plan["servers"]} | {plan["all_at_once"]["status"]} == {"outage"}
    assert plan["advice"].startswith("outage: 12 clients already trust no current key")
    stranded = check(lab.config_path, "--renewal", "SEPM1", "--stranded", "--format", "csv")
    records = list(csv.DictReader(io.StringIO(stranded.stdout)))  # the whole of stdout is the CSV
    assert len(records) == 12 and stranded.returncode == 2
    columns = {"client", "group_id", "status", "since", "server", "group_file", "group_name", "note", "evidence", "rule", "reason"}
    assert all(set(r) == columns
               for r in records)


def test_text_renewal_during_an_outage_never_reads_safe(lab: estate.Lab) -> None:
    outage(lab)
    result = check(lab.config_path, "--renewal", "SEPM1")
    assert result.returncode == 2
    assert "(safe)" not in result.stdout and "strands no client" not in result.stdout
    assert "Renewing SEPM1 with a new key now would strand 0 more clients (outage)" in result.stdout
    assert "outage now: 12 clients already trust no current key and cannot connect" in result.stdout


def test_an_unreadable_root_is_a_warning_and_exits_0(lab: estate.Lab) -> None:
    lab.vanish("SEPM2")
    result = check(lab.config_path)
    assert result.returncode == 0, result.stdout
    assert "WARNING  server SEPM2: root cannot be read; nothing in it can be checked until it returns" in result.stdout
    (lab.clients_root).rename(lab.clients_root.with_name("clients.away"))
    result = check(lab.config_path)
    assert result.returncode == 0 and "client root" in result.stdout and "cannot be read" in result.stdout


def test_groups_are_named_and_words_are_right(lab: estate.Lab) -> None:
    outage(lab)
    text = check(lab.config_path).stdout
    for group in lab.state.groups:
        assert f"group {group.name} ({group.group_id}): 4 clients embed no current key" in text
    lab.renew("SEPM1", new_key=False, valid_days=1, age_days=3)
    text = check(lab.config_path).stdout
    assert "expired 2 d ago" in text and "expires in -" not in text


def test_settings_files_in_utf16_are_read_and_other_encodings_are_one_line(lab: estate.Lab, tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.yml"
    utf16.write_bytes(lab.config_path.read_text(encoding="utf-8").encode("utf-16"))  # Notepad's "Unicode"
    assert check(utf16).returncode == 0
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes(lab.config_path.read_bytes() + "# Müller\n".encode("latin-1"))
    result = check(latin1)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "not UTF-8 text" in result.stderr
    web = tmp_path / "web.yml"
    web.write_bytes("basic_auth_users:\n  ü: x\n".encode("latin-1"))
    served = subprocess.run([sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
                             "--web.listen-address", "127.0.0.1:0", "--web.config.file", str(web)],
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 1 and "Traceback" not in served.stderr
    assert [line for line in served.stderr.splitlines() if "web config" in line] == [
        f"web config error: web config {web}: not UTF-8 text (byte 20); save it as UTF-8"]


def test_a_closed_pipe_is_one_line_and_exit_141(lab: estate.Lab) -> None:
    process = subprocess.Popen([sys.executable, "-m", "sepm_exporter", "check", "--config", str(lab.config_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `check | head -0`: the reader is gone before the report is written
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert error.strip().splitlines() == ["sepm-exporter: the output was closed before it ended (broken pipe)"]


def test_a_weak_certificate_is_dated_from_when_it_was_seen_and_named_once(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    weak = [f for f in findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
            if f.alert == "SEPMServerCertificateWeakSignature"]
    assert [f.subject for f in weak] == ["server SEPM1", "server SEPM2"], "server.crt and keystore.jks: one row each"
    assert all("server.crt and tomcat/etc/keystore.jks are signed with sha1" in f.message for f in weak)
    seen = exporter.history.servers["SEPM1"].seen_at
    assert seen is not None and weak[0].since == seen, "since it was seen, not its notBefore of 3,000 days ago"


def test_the_external_url_sets_the_runbook_base(lab: estate.Lab) -> None:
    config = load_config(lab.config_path)
    assert external_url(config, "127.0.0.1:10877", 10877, tls=False) == "http://127.0.0.1:10877"
    assert external_url(config, "[::1]:10877", 10877, tls=True) == "https://[::1]:10877"
    args = parse_args(["serve", "--config", str(lab.config_path), "--web.external-url", "https://sepm.example/exporter/"])
    flagged = effective_config(args)
    assert external_url(flagged, ":10877", 10877, tls=False) == "https://sepm.example/exporter"
    bad = parse_args(["serve", "--config", str(lab.config_path), "--web.external-url", "ftp://x"])
    with pytest.raises(ConfigError) as refused:
        effective_config(bad)
    assert refused.value.problems == ["--web.external-url: must be an http:// or https:// URL with a host and no query, "
                                      "got 'ftp://x'"]
