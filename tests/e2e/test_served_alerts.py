"""Renewed on disk, not restarted: a real listener, a running exporter, a real Prometheus with the shipped rules.

The rules are the shipped `alerts/served.rules.yml` with every `for:` shortened to seconds (the
only change), so the test sees each alert fire and clear within a minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.lab.tls import TlsListener, server_context
from services import Prometheus

pytestmark = pytest.mark.e2e
RULES = Path(__file__).parent.parent.parent / "alerts" / "served.rules.yml"


def serve(lab: estate.Lab, server: str, port: int = 0) -> TlsListener:
    key, chain = lab.served_pair(server)
    return TlsListener(server_context(key, chain), port=port).start()


def firing(prometheus: Prometheus, alert: str) -> list[str]:
    found = prometheus.query(f'ALERTS{{alertname="{alert}",alertstate="firing"}}')
    return sorted(r["metric"].get("endpoint") or r["metric"]["server"] for r in found)


@pytest.fixture
def listener(lab: estate.Lab) -> Iterator[TlsListener]:
    running = serve(lab, "SEPM1")
    yield running
    running.close()


def test_served_mismatch_fires_and_clears_after_the_restart(lab: estate.Lab, listener: TlsListener, tmp_path: Path) -> None:
    endpoint, closed = f"127.0.0.1:{listener.port}", f"127.0.0.1:{free_port()}"
    config = tmp_path / "sepm.yml"
    config.write_text(
        lab.config_path.read_text(encoding="utf-8").replace(
            "    site: tokyo\n", f'    site: tokyo\n    probes: ["{endpoint}", "{closed}"]\n', 1)
        + "probe:\n  interval: 1\n  timeout: 1\n",
        encoding="utf-8",
    )
    rules = tmp_path / "served.rules.yml"
    rules.write_text(re.sub(r"for: \d+m", "for: 3s", RULES.read_text(encoding="utf-8")), encoding="utf-8")
    port = free_port()
    exporter = start_exporter(config, port, "--watch.mode=events", log=tmp_path / "exporter.log")
    prometheus = Prometheus(
        tmp_path / "prom",
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{rules}']\n"
        "scrape_configs:\n  - job_name: sepm\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n",
    )
    try:
        wait_for(lambda: firing(prometheus, "SEPMProbeDown") == [closed], timeout=40)
        match = wait_for(lambda: prometheus.query(f'sepm_served_certificate_key_match{{endpoint="{endpoint}"}}'), timeout=30)
        assert match[0]["value"][1] == "1"
        assert firing(prometheus, "SEPMServedCertificateMismatch") == []

        lab.renew("SEPM1", new_key=True)  # on disk; the listener was not restarted
        wait_for(lambda: firing(prometheus, "SEPMServedCertificateMismatch") == [endpoint], timeout=40)

        listener.close()
        restarted = serve(lab, "SEPM1", port=listener.port)  # the service restarts onto the new pair
        try:
            wait_for(lambda: prometheus.query(f'sepm_served_certificate_key_match{{endpoint="{endpoint}"}} == 1'),
                     timeout=30)
            wait_for(lambda: firing(prometheus, "SEPMServedCertificateMismatch") == [], timeout=30)
        finally:
            restarted.close()

        assert firing(prometheus, "SEPMKeystoreKeyMismatch") == []
        lab.renew("SEPM2", new_key=True, keystore="skip")  # Apache's copy only
        wait_for(lambda: firing(prometheus, "SEPMKeystoreKeyMismatch") == ["SEPM2"], timeout=40)
    finally:
        prometheus.stop()
        stop(exporter)
    log = (tmp_path / "exporter.log").read_text(encoding="utf-8")
    assert lab.keystore_password not in log
