"""An estate with no client collection: SEPM's records are the only client evidence, end to end.

Lab -> two lab REST APIs (one replicated database: both list every computer) -> `serve` ->
Prometheus (every rules file) -> Alertmanager -> a webhook. Both servers renewed with a new key,
half the computers already on the new profile: every computer is counted once, exactly those still
on the old profile are untrusted and paged, and a fresh `check --stranded --format json` (no
history) names the same set.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.lab_api import start_lab_api
from e2e.test_alert_delivery import Receiver
from helpers import free_port, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.lab.api import Estate, config_with_api
from sepm_exporter.sepm.serial import parse_serial
from services import Alertmanager, Prometheus

pytestmark = pytest.mark.e2e
RULES = sorted((Path(__file__).parent.parent.parent / "alerts").glob("*.rules.yml"))
HEARTBEAT = 5
CLIENTS = 10


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[estate.Lab, Path, Receiver, Prometheus]]:
    lab = estate.init(tmp_path / "lab", groups=2, clients=CLIENTS, heartbeat_seconds=HEARTBEAT)
    password = tmp_path / "password"
    password.write_text("api-only-lab\n", encoding="utf-8")
    ports = {s.name: free_port() for s in lab.state.servers}
    apis = [start_lab_api(lab.directory, name, port, password, tmp_path / f"lab-api-{name}.log")
            for name, port in ports.items()]
    config = config_with_api(lab, {name: (port, password) for name, port in ports.items()}, interval=1, timeout=0.9,
                             collection=False, path=tmp_path / "api-only.yml")
    assert "collection" not in config.read_text(encoding="utf-8")
    receiver = Receiver()
    alertmanager = Alertmanager(
        tmp_path / "am",
        "route:\n  receiver: hook\n  group_by: [alertname, group_id]\n  group_wait: 1s\n  group_interval: 1s\n"
        "  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: {receiver.url}\n        send_resolved: false\n",
    )
    exporter_port = free_port()
    exporter = start_exporter(config, exporter_port, "--watch.mode=events", log=tmp_path / "exporter.log")
    prometheus = Prometheus(
        tmp_path / "prom",
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: [{', '.join(repr(str(path)) for path in RULES)}]\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{alertmanager.port}']\n"
        f"scrape_configs:\n  - job_name: sepm\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
    )
    try:
        wait_for(lambda: total(prometheus) == CLIENTS, timeout=40)
        yield lab, config, receiver, prometheus
    finally:
        prometheus.stop()
        stop(exporter)
        for api in apis:
            stop(api)
        alertmanager.stop()
        receiver.server.shutdown()


def total(prometheus: Prometheus) -> float:
    found = prometheus.query('sum(sepm_group_clients{evidence="api"})')
    return float(found[0]["value"][1]) if found else -1.0


def test_the_incident_on_an_estate_with_no_client_collection(stack: tuple[estate.Lab, Path, Receiver, Prometheus],
                                                            tmp_path: Path) -> None:
    lab, config, receiver, prometheus = stack
    time.sleep(3)  # a few healthy evaluations: nothing pages
    assert [a for a in receiver.alerts if a["labels"]["alertname"] == "SEPMClientServerKeyUntrusted"] == []
    assert prometheus.query('sepm_group_clients{evidence="file"} > 0') == []

    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    pulled = set(lab.pull(0.5))
    old = set(lab.state.clients) - pulled
    groups = {lab.state.clients[name] for name in old}

    def paged() -> dict[str, int]:
        pages = {a["labels"]["group_id"]: int(a["annotations"]["description"].split()[0])
                 for a in receiver.alerts if a["labels"]["alertname"] == "SEPMClientServerKeyUntrusted"}
        return pages if set(pages) == groups and sum(pages.values()) == len(old) else {}

    wait_for(paged, timeout=40)
    named = {r["metric"]["client"] for r in prometheus.query("sepm_api_client_key_trusted == 0")}
    assert named == old
    assert total(prometheus) == CLIENTS  # every computer once, though both APIs list it
    untrusted = prometheus.query('sum(sepm_group_clients{evidence="api",state="untrusted"})')
    assert float(untrusted[0]["value"][1]) == len(old)

    # Each group's policy time, to the millisecond, as SEPM's /groups says it.
    for group in Estate(lab.directory, "SEPM1").view(time.time()).groups:
        (sample,) = prometheus.query(f'sepm_api_group_policy_timestamp_seconds{{server="SEPM1",group_id="{group["id"]}"}}')
        assert round(float(sample["value"][1]) * 1000) == group["policyDate"] == parse_serial(group["policySerialNumber"]).time_ms

    # A fresh check, with no history: the same set, each with its evidence and rule.
    fresh = tmp_path / "fresh.yml"
    fresh.write_text(config.read_text(encoding="utf-8").replace("state.json", "fresh-state.json"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "sepm_exporter", "check", "--config", str(fresh), "--stranded",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr  # 2: something is critical
    listed = json.loads(done.stdout)
    assert {r["client"] for r in listed if r["status"] == "untrusted"} == old
    assert {(r["evidence"], r["rule"]) for r in listed} == {("api", "older_than_certificate")}


def test_a_keep_key_renewal_seen_with_no_history_pages_nobody(stack: tuple[estate.Lab, Path, Receiver, Prometheus],
                                                              tmp_path: Path) -> None:
    """Both servers renewed keeping their key; nobody has pulled the new profile yet. A fresh check (no
    history, so rule 2 cannot help) sees computers on the old profile still checking in after the new
    certificate was made: the key is older than the certificate, and nobody is called untrusted."""
    from sepm_exporter.judge.keysets import CHECK_IN_GRACE

    lab, config, receiver, prometheus = stack
    renewed = time.time()
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    time.sleep(CHECK_IN_GRACE + 2 * HEARTBEAT - (time.time() - renewed))  # every old-profile computer checks in since
    fresh = tmp_path / "fresh.yml"
    fresh.write_text(config.read_text(encoding="utf-8").replace("state.json", "fresh-state.json"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "sepm_exporter", "check", "--config", str(fresh), "--stranded",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    listed = json.loads(done.stdout)
    assert [r for r in listed if r["status"] == "untrusted"] == [] and done.returncode == 0, done.stdout + done.stderr
    assert prometheus.query('sum(sepm_group_clients{state="untrusted"}) > 0') == []  # and serve, with history, agrees
    assert [a for a in receiver.alerts if a["labels"].get("severity") == "critical"] == []
