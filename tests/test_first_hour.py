"""A newcomer's first hour: every README or --help command, given each bad input seen on a clean clone,
ends with a one-line error and the documented exit code, never a traceback. And the demo's story works
as printed, on a busy port too, without leaving its lab behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port, get, wait_for
from sepm_exporter.lab import estate

ROOT = Path(__file__).parent.parent


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sepm_exporter", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def usage_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    """argparse's shape: the command's own usage, then one `error:` line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: sepm-exporter {command} "), result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"sepm-exporter {command}: error: "), result.stderr
    return errors[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(("address", "says"), [
    ("127.0.0.1:99999", "out of range"),
    ("127.0.0.1", "has no port"),
    ("31878", "no host part: write :31878 for every interface or 127.0.0.1:31878"),
    ("127.0.0.1:http", "is not a number"),
])
def test_bad_listen_addresses(lab: estate.Lab, address: str, says: str) -> None:
    for command in ("serve", "demo", "healthcheck"):
        extra = ["--config", str(lab.config_path)] if command == "serve" else []
        line = usage_error(run(command, *extra, "--web.listen-address", address), command)
        assert "argument --web.listen-address:" in line and says in line, line


def test_busy_port_on_serve(lab: estate.Lab, busy_port: int) -> None:
    result = run("serve", "--config", str(lab.config_path), "--web.listen-address", f"127.0.0.1:{busy_port}")
    assert result.returncode == 1
    assert one_line(result) == f"cannot listen on 127.0.0.1:{busy_port}: Address already in use"


def test_busy_port_on_demo_leaves_no_lab(tmp_path: Path, busy_port: int) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = run("demo", "--web.listen-address", f"127.0.0.1:{busy_port}", env=env)
    assert result.returncode == 1
    assert one_line(result) == f"cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    assert not list(tmp_path.glob("sepm-demo-*"))


def test_unknown_flag_shows_the_commands_own_usage(lab: estate.Lab) -> None:
    line = usage_error(run("serve", "--config", str(lab.config_path), "--web.listen-adress", ":1"), "serve")
    assert line.endswith("unrecognized arguments: --web.listen-adress :1")
    usage_error(run("check", "--bogus"), "check")


def test_textfile_output_problems(lab: estate.Lab, tmp_path: Path) -> None:
    missing = run("textfile", "--config", str(lab.config_path), "--output", str(tmp_path / "nowhere" / "sepm.prom"))
    assert missing.returncode == 1
    assert one_line(missing).startswith(f"--output: folder {tmp_path / 'nowhere'} does not exist")
    suffix = run("textfile", "--config", str(lab.config_path), "--output", str(tmp_path / "sepm.txt"))
    assert suffix.returncode == 1 and one_line(suffix).startswith("--output: must end in .prom")


def test_config_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("servers:\n  - name: SEPM1\n    root: [unclosed\n", encoding="utf-8")
    result = run("check", "--config", str(broken))
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"config error: {broken}:4:1: not valid YAML: "), line
    mistyped = tmp_path / "mistyped.yml"
    mistyped.write_text("server:\n  - name: SEPM1\n    root: /x\nclient:\n  - collection: /y\n", encoding="utf-8")
    result = run("check", "--config", str(mistyped))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    allowed = "allowed: clients, external_url, max_file_bytes, probe, servers, state_file, watch"
    assert result.stderr.splitlines() == [
        f"config error: server: unknown key (did you mean servers? {allowed})",
        f"config error: client: unknown key (did you mean clients? {allowed})",
    ]
    absent = run("check", "--config", str(tmp_path / "absent.yml"))
    assert absent.returncode == 1 and "cannot read the config file" in one_line(absent)


def test_missing_collection_is_said_as_the_alert_says_it(lab: estate.Lab, tmp_path: Path) -> None:
    """One verdict everywhere: SEPMExporterRootDown is a warning, so `check` warns and exits 0."""
    config = tmp_path / "config.yml"
    config.write_text(lab.config_path.read_text(encoding="utf-8").replace(str(lab.clients_root), str(tmp_path / "no-such")),
                      encoding="utf-8")
    result = run("check", "--config", str(config))
    assert result.returncode == 0, result.stdout
    assert f"WARNING  client root {tmp_path / 'no-such'}: client folder cannot be read" in result.stdout
    found = json.loads(run("check", "--config", str(config), "--format", "json").stdout)["findings"]
    assert [f["alert"] for f in found if f["subject"].startswith("client root ")] == ["SEPMExporterRootDown"]


def test_csv_needs_stranded(lab: estate.Lab) -> None:
    result = run("check", "--config", str(lab.config_path), "--format", "csv")
    assert result.returncode == 1 and one_line(result) == "--format csv lists stranded clients: add --stranded"


def test_lab_steps_on_a_missing_lab_or_server(lab: estate.Lab, tmp_path: Path) -> None:
    missing = run("lab", "renew", str(tmp_path / "nolab"), "SEPM1")
    assert missing.returncode == 1 and "is not a lab (run `lab init" in one_line(missing)
    unknown = run("lab", "renew", str(lab.directory), "SEPM9")
    assert unknown.returncode == 1 and one_line(unknown).startswith("lab renew: no server SEPM9 in this lab")


def test_lab_replay_prints_readable_times(tmp_path: Path) -> None:
    result = run("lab", "replay", str(tmp_path / "lab"))
    assert result.returncode == 0
    assert " UTC, sha1" in result.stdout and "not after 1" not in result.stdout


def test_demo_help_states_the_real_bind_address() -> None:
    assert "default 127.0.0.1:10877" in run("demo", "-h").stdout


@pytest.mark.parametrize("collection", [True, False], ids=["client collection", "no client collection"])
def test_the_demo_story_as_printed(tmp_path: Path, collection: bool) -> None:
    """Run the demo, then every command it prints, from the repository folder as a newcomer would; without
    a client collection, SEPM's records (the lab's REST APIs) are the only client evidence."""
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != Path(sys.executable).parent)
    demo = subprocess.Popen([sys.executable, "-m", "sepm_exporter", "demo", "--web.listen-address", f"127.0.0.1:{port}",
                             "--heartbeat", "60", *([] if collection else ["--no-client-collection"])],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert demo.stdout is not None
        printed: list[str] = []
        for line in demo.stdout:
            printed.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        commands = [line.split("#", 1)[0].strip() for line in printed if line.startswith("  ")]
        assert commands and all(c.startswith(".venv/bin/sepm-exporter ") or c.startswith(sys.executable) for c in commands)
        wait_for(lambda: get(f"http://127.0.0.1:{port}/-/ready"), timeout=30)
        outputs = []
        for command in commands:
            done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode in (0, 2), f"{command}: {done.stderr}"  # 2: check found something critical
            outputs.append(done.stdout)
        assert "Clients: current 0, stale 0, untrusted 12" in outputs[4], "replicated first: every client untrusted, none stale"
        stranded = outputs[6].splitlines()
        assert stranded[0] == "client,group_id,status,since,server,group_file,group_name,note,evidence,rule,reason"
        assert len(stranded) == 1 + 6
        assert {r["evidence"] for r in csv.DictReader(io.StringIO(outputs[6]))} == {"file" if collection else "api"}
        check = next(c for c in commands if " check --config " in c).split(" --stranded")[0]
        as_json = subprocess.run(["bash", "-c", f"{check} --format json"], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=120)
        alerts = {f["alert"] for f in json.loads(as_json.stdout)["findings"]}
        assert "SEPMServedCertificateMismatch" in alerts, "the printed config probes SEPM1's 443 as the page does"
        page = wait_for(lambda: (p := get(f"http://127.0.0.1:{port}/").decode()) and 'data-state="current"><b>6<' in p and p,
                        timeout=40)
        assert 'data-state="untrusted"><b>6<' in page
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    assert demo.returncode == 0
    assert not list(tmp_path.glob("sepm-demo-*")), "the demo removes its lab on exit"
