from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import one
from sepm_exporter.lab import estate


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sepm_exporter", *args], capture_output=True, text=True, timeout=120)


def test_metrics_prints_the_exposition(lab: estate.Lab) -> None:
    result = run("metrics", "--config", str(lab.config_path))
    assert result.returncode == 0, result.stderr
    assert one(result.stdout.encode(), "sepm_exporter_root_up", server="SEPM1") == 1


def test_clients_series_flag_chooses_who_is_named_and_check_names_everyone_anyway(lab: estate.Lab) -> None:
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    lab.pull(0.5)
    counts = {}
    for mode in ("all", "problems", "none"):
        result = run("metrics", "--config", str(lab.config_path), "--clients.series", mode)
        assert result.returncode == 0, result.stderr
        counts[mode] = sum(line.startswith("sepm_client_") for line in result.stdout.splitlines())
    assert counts == {"all": 6 * 4 + 6 * 3, "problems": 6 * 2, "none": 0}  # a first scan: the old file is of no known group
    limited = run("metrics", "--config", str(lab.config_path), "--clients.series-limit", "4")
    assert "sepm_exporter_client_series_dropped 8.0" in limited.stdout
    stranded = run("check", "--config", str(lab.config_path), "--stranded", "--format", "csv", "--clients.series", "none")
    assert len(stranded.stdout.strip().splitlines()) == 1 + 6, "check --stranded lists every client in any mode"


def test_unusable_config_exits_1_with_key_paths(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text("servers:\n  - name: S\n", encoding="utf-8")
    result = run("metrics", "--config", str(tmp_path / "c.yml"))
    assert result.returncode == 1
    assert "config error: servers[0].root: required" in result.stderr


def test_check_exits_0_when_healthy_and_2_when_clients_are_stranded(lab: estate.Lab) -> None:
    healthy = run("check", "--config", str(lab.config_path))
    assert healthy.returncode == 0, healthy.stdout
    assert "SEPM1" in healthy.stdout and "current 12" in healthy.stdout
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    broken = run("check", "--config", str(lab.config_path))
    assert broken.returncode == 2
    assert "CRITICAL group " in broken.stdout and "4 clients embed no current key of any server they list" in broken.stdout
    assert "WS-0001" in broken.stdout and "alert SEPMClientServerKeyUntrusted" in broken.stdout
    assert "untrusted 12" in broken.stdout


def test_textfile_writes_prom_file_atomically(lab: estate.Lab, tmp_path: Path) -> None:
    out = tmp_path / "sepm.prom"
    result = run("textfile", "--config", str(lab.config_path), "--output", str(out))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\n")
    assert one(data, "sepm_exporter_root_up", server="SEPM2") == 1
    assert run("textfile", "--config", str(lab.config_path), "--output", str(tmp_path / "x.txt")).returncode == 1


def test_lab_replay_prints_what_the_admin_saw(tmp_path: Path) -> None:
    result = run("lab", "replay", str(tmp_path / "lab"))
    assert result.returncode == 0, result.stderr
    assert "group SyLink.xml identical on all partners: yes" in result.stdout
    steps = result.stdout.split("== step ")
    assert "exporter:   nothing critical" in steps[1], "one partner renewed: clients still trust the other, no page"
    assert "4 clients embed no current key of any server they list: they cannot connect" in steps[2], "both: the outage"
    keep = run("lab", "replay", str(tmp_path / "lab2"), "--keep-key")
    assert "public key changed" not in keep.stdout and "embed no current key" not in keep.stdout


def test_progress_shows_only_on_a_terminal_after_a_second() -> None:
    import io

    from sepm_exporter.commands.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe, tty = io.StringIO(), Tty()
    quiet, shown = Progress(pipe), Progress(tty)
    quiet.started = shown.started = shown.started - 5  # a scan that has run for five seconds
    quiet(3, 10)
    shown(3, 10)
    shown.close()
    assert pipe.getvalue() == ""
    assert tty.getvalue() == "\rscanning: 3 of 10 done\n"
    fresh = Progress(tty)
    fresh(1, 10)  # under a second: nothing
    assert tty.getvalue() == "\rscanning: 3 of 10 done\n"


def test_flags_get_the_checks_the_config_file_gets(lab: estate.Lab) -> None:
    """A flag is not a back door: values the YAML refuses are refused on the command line, by flag name."""
    result = run("serve", "--config", str(lab.config_path), "--watch.poll-interval", "-1", "--files.max-bytes", "0")
    assert result.returncode == 1
    assert "config error: --watch.poll-interval: must be at least 0.05" in result.stderr
    assert "config error: --files.max-bytes: must be at least 1024" in result.stderr
    assert "Traceback" not in result.stderr
    fine = run("metrics", "--config", str(lab.config_path), "--files.max-bytes", "2048")
    assert fine.returncode == 0, fine.stderr
