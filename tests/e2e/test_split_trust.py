"""Split topology, clients on SEPM1's exporter: a new key on SEPM1 alone pages no client as untrusted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpers import free_port, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from services import Prometheus

pytestmark = pytest.mark.e2e
RULES = sorted((Path(__file__).parent.parent.parent / "alerts").glob("*.rules.yml"))


def test_new_key_on_one_server_leaves_clients_unknown_not_untrusted(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=6, heartbeat_seconds=2)
    configs = estate.write_split_configs(lab, tmp_path / "split", clients_on="SEPM1")
    ports = [free_port() for _ in configs]
    exporters = [start_exporter(c, p, "--watch.mode=events", log=tmp_path / f"{c.stem}.log") for c, p in zip(configs, ports, strict=True)]
    rules = ", ".join(f"'{r}'" for r in RULES)
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
    prometheus = Prometheus(tmp_path / "prom", "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                            f"rule_files: [{rules}]\nscrape_configs:\n  - job_name: sepm\n    static_configs:\n"
                            f"      - targets: [{targets}]\n")
    try:
        wait_for(lambda: len(prometheus.query("sepm_exporter_build_info")) == 2, timeout=30)
        lab.renew("SEPM1", new_key=True)
        lab.publish("SEPM1")
        wait_for(lambda: prometheus.query('ALERTS{alertname="SEPMServerKeyChanged",alertstate="firing",server="SEPM1"}'),
                 timeout=30)
        wait_for(lambda: prometheus.query('sum(sepm_group_clients{state=~"unknown|stale"}) == 6'), timeout=30)
        time.sleep(3)  # a heartbeat window and more: nothing may page
        assert prometheus.query('ALERTS{alertname="SEPMClientServerKeyUntrusted"}') == []
        assert prometheus.query('sum(sepm_group_clients{state="untrusted"}) > 0') == []
        assert prometheus.query("sepm_client_server_key_trusted == 0") == [], "no client is published as untrusted"
    finally:
        prometheus.stop()
        for process in exporters:
            stop(process)
