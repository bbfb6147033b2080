"""A real Prometheus scrapes a running exporter; values are read back through its HTTP API."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import free_port, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from services import Prometheus

pytestmark = pytest.mark.e2e


def test_prometheus_sees_the_incident(lab: estate.Lab, tmp_path: Path) -> None:
    port = free_port()
    exporter = start_exporter(lab.config_path, port, "--watch.mode=events", log=tmp_path / "exporter.log")
    prometheus = Prometheus(
        tmp_path / "prom",
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: sepm\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n",
    )
    try:
        wait_for(lambda: prometheus.query('up{job="sepm"} == 1'), timeout=30)
        current = wait_for(lambda: prometheus.query('sum(sepm_group_clients{state="current"})'), timeout=30)
        assert float(current[0]["value"][1]) == 12
        assert prometheus.query("sepm_client_sylink_info") == [], "healthy clients: counted, not named"
        info = prometheus.query('sepm_certificate_info{server="SEPM1"}')
        assert info[0]["metric"]["signature_hash"] == "sha1" and info[0]["metric"]["site"] == "tokyo"

        for server in ("SEPM1", "SEPM2"):
            lab.renew(server, new_key=True)
        lab.publish("SEPM1")
        lab.replicate("SEPM1", "SEPM2")
        wait_for(lambda: prometheus.query('sum(sepm_group_clients{state="untrusted"}) == 12'), timeout=30)
        named = wait_for(lambda: prometheus.query("sepm_client_server_key_trusted == 0") or None, timeout=30)
        assert len(named) == 12, "every stranded client is named"
        changed = prometheus.query("sepm_server_key_changed_timestamp_seconds")
        assert sorted(r["metric"]["server"] for r in changed) == ["SEPM1", "SEPM2"]
        previous = prometheus.query('sepm_server_previous_key_info{signature_hash="sha1"}')
        assert len(previous) == 2
        assert prometheus.query("max(sepm_sylink_replica_mismatch)")[0]["value"][1] == "0"
    finally:
        prometheus.stop()
        stop(exporter)
