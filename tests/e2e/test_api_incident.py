"""The incident through real Prometheus and every rules file: the files predict, the API confirms.

A new-key renewal pages `SEPMServerKeyChanged` at once (files), then `SEPMClientsOffline` once the
stranded clients miss their heartbeat (the lab's REST API), for the very groups the files judged
untrusted. A keep-key renewal gives neither. Heartbeat 10 s: room for the files to be seen first on a
busy machine (at 5 s a loaded run once saw the heartbeat pass first), and each case stays near a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.lab_api import start_lab_api
from helpers import free_port, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.lab.api import config_with_api
from services import Prometheus

pytestmark = pytest.mark.e2e
ALERTS = Path(__file__).parent.parent.parent / "alerts"
HEARTBEAT = 10


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[estate.Lab, Prometheus]]:
    lab = estate.init(tmp_path / "lab", groups=3, clients=9, heartbeat_seconds=HEARTBEAT)
    password = tmp_path / "password"
    password.write_text("incident-lab\n", encoding="utf-8")
    api_port, exporter_port = free_port(), free_port()
    lab_api = start_lab_api(lab.directory, "SEPM1", api_port, password, tmp_path / "lab-api.log")
    config = config_with_api(lab, {"SEPM1": (api_port, password)}, interval=1, timeout=0.9)
    exporter = start_exporter(config, exporter_port, "--watch.mode=events", log=tmp_path / "exporter.log")
    rules = ", ".join(f"'{path}'" for path in sorted(ALERTS.glob("*.rules.yml")))
    prometheus = Prometheus(
        tmp_path / "prom",
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: [{rules}]\n"
        f"scrape_configs:\n  - job_name: sepm\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
    )
    try:
        # A few seconds of a healthy estate, so the 6-hour peak of the online share is 1.
        wait_for(lambda: len(prometheus.query("sepm:api_group_online_share == 1")) == 3, timeout=30)
        time.sleep(2)
        yield lab, prometheus
    finally:
        prometheus.stop()
        stop(exporter)
        stop(lab_api)


def firing(prometheus: Prometheus, alert: str) -> list[dict[str, str]]:
    return [r["metric"] for r in prometheus.query(f'ALERTS{{alertname="{alert}",alertstate="firing"}}')]


def test_new_key_renewal_is_predicted_then_confirmed_for_the_same_groups(stack: tuple[estate.Lab, Prometheus]) -> None:
    lab, prometheus = stack
    started = time.monotonic()
    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    wait_for(lambda: len(firing(prometheus, "SEPMServerKeyChanged")) == 2, timeout=20)
    predicted = time.monotonic() - started
    assert firing(prometheus, "SEPMClientsOffline") == []  # the API has not seen anyone miss a heartbeat yet
    offline = wait_for(lambda: (found := firing(prometheus, "SEPMClientsOffline")) and len(found) == 3 and found,
                       timeout=HEARTBEAT * 6)
    confirmed = time.monotonic() - started
    print(f"predicted after {predicted:.1f} s, confirmed after {confirmed:.1f} s")
    assert {a["severity"] for a in offline} == {"critical"}  # it follows a key change
    untrusted = {r["metric"]["group_id"] for r in prometheus.query('sepm_group_clients{state="untrusted"} > 0')}
    assert {a["group_id"] for a in offline} == untrusted == {g.group_id for g in lab.state.groups}
    assert predicted < confirmed


def test_keep_key_renewal_gives_neither(stack: tuple[estate.Lab, Prometheus]) -> None:
    lab, prometheus = stack
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    for group in lab.state.groups:
        lab.pull(0.5, group_id=group.group_id)
    after = time.time() + 3 * HEARTBEAT  # three heartbeats: anyone stranded would have been seen
    wait_for(lambda: prometheus.query(f"sepm_api_last_success_timestamp_seconds > {after}"), timeout=40)
    time.sleep(2)  # two rule evaluations on those figures
    for alert in ("SEPMServerKeyChanged", "SEPMClientsOffline"):
        assert prometheus.query(f'ALERTS{{alertname="{alert}"}}') == [], alert
    assert len(prometheus.query('sepm_api_group_clients{status="offline"} == 0')) == 3
    readiness = prometheus.query("sepm:api_group_clients_not_on_current_policy > 0")
    assert {r["metric"]["group_id"] for r in readiness} == {g.group_id for g in lab.state.groups}  # the unpulled half
