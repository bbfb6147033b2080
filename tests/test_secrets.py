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
        assert lab.keystore_password not in text, name  # keystore.jks is read without it, and it is never said


OPENED: list[str] = []


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        OPENED.append(str(args[0]))


def test_the_private_key_file_is_never_opened(lab: estate.Lab) -> None:
    """Every open() of a full scan and a refresh, seen by an audit hook: server.key is not among them."""
    from sepm_exporter.runtime import Exporter
    from sepm_exporter.settings.config import load_config

    if _record_opens not in _HOOKS:
        sys.addaudithook(_record_opens)  # hooks cannot be removed; this one only appends to a list
        _HOOKS.append(_record_opens)
    OPENED.clear()
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    exporter.exposition_gzip_parts()
    opened = list(OPENED)
    assert any(p.endswith("server.crt") for p in opened), "the hook sees the scan's reads"
    assert not any(p.endswith("server.key") for p in opened)
    assert lab.key_path("SEPM1").exists()


_HOOKS: list[object] = []
