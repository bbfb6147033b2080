"""The lab's REST API as its own process (`sepm-exporter lab api`), as the docs start it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import wait_for


def start_lab_api(lab_dir: Path, server: str, port: int, password_file: Path, log: Path,
                  *extra: str) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "lab", "api", str(lab_dir), server,
         "--web.listen-address", f"127.0.0.1:{port}", "--password-file", str(password_file), *extra],
        stdout=out, stderr=out,
    )
    wait_for(lambda: b" API on https://" in log.read_bytes(), timeout=60)
    return process
