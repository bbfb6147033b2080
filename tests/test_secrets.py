"""No secret anywhere in output: a known Kcs and the private keys never leave the files they live in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import free_port, get, start_exporter, stop
from sepm_exporter.lab import estate

KCS = "C0FFEE00DEADBEEF0123456789ABCDEF"


def test_kcs_and_private_keys_never_reach_any_output(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=4, kcs=KCS)
    private = [lab.key_path(s.name).read_bytes() for s in lab.state.servers]
    key_lines = [line for key in private for line in key.decode().splitlines() if "-----" not in line]
    lab.write_hostile("truncated", lab.client_path("WS-0001"))  # a problem, so the logs have something to say
    log = tmp_path / "exporter.log"
    port = free_port()
    process = start_exporter(lab.config_path, port, "--log.level=debug", log=log)
    try:
        outputs = {
            "metrics": get(f"http://127.0.0.1:{port}/metrics").decode(),
            "landing": get(f"http://127.0.0.1:{port}/").decode(),
        }
    finally:
        stop(process)
    outputs["log"] = log.read_text(encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "sepm_exporter", "check", "--config", str(lab.config_path)],
                           capture_output=True, text=True)
    outputs["check"] = check.stdout + check.stderr
    assert "truncated_xml" in outputs["log"] and "truncated_xml" in outputs["metrics"]  # they did speak
    assert KCS in lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_text(encoding="utf-8")
    for name, text in outputs.items():
        assert KCS not in text and KCS.lower() not in text, name
        assert not any(line in text for line in key_lines), name
