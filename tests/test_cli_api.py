"""One-shot commands poll each API once, bounded by its timeout, and still print everything else."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from helpers import free_port
from sepm_exporter.lab import api, estate


def test_metrics_polls_once_and_a_hanging_api_only_costs_its_timeout(lab: estate.Lab, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("one-shot", encoding="utf-8")
    server = api.serve(lab.directory, "SEPM1", f"127.0.0.1:{free_port()}", "one-shot")
    config = api.config_with_api(lab, {"SEPM1": (server.port, password)}, interval=5, timeout=1)
    try:
        def metrics() -> tuple[str, float]:
            started = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "sepm_exporter", "metrics", "--config", str(config)],
                                 capture_output=True, text=True, check=True)
            return out.stdout, time.monotonic() - started

        text, _ = metrics()
        assert 'sepm_api_up{server="SEPM1"} 1.0' in text and 'status="online"} 4.0' in text
        api.set_fault(lab.directory, "SEPM1", "hang")
        text, seconds = metrics()
        assert 'sepm_api_up{server="SEPM1"} 0.0' in text
        assert 'sepm_api_request_errors_total{server="SEPM1",reason="timeout"} 1.0' in text
        assert 'sepm_group_clients{group_id=' in text and "sepm_exporter_ready 1.0" in text  # the file side is all there
        assert seconds < 20
    finally:
        api.set_fault(lab.directory, "SEPM1", "none")
        server.shutdown()
        server.server_close()
