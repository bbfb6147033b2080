"""From a change on disk to an on-call receiver: lab -> exporter -> Prometheus -> Alertmanager -> webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from services import Alertmanager, Prometheus

pytestmark = pytest.mark.e2e
RULES = sorted((Path(__file__).parent.parent.parent / "alerts").glob("*.rules.yml"))  # every area's file


class Receiver:
    """A webhook receiver: records every firing alert with its arrival order."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.extend(a for a in body["alerts"] if a["status"] == "firing")
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def names(self, severity: str | None = None) -> list[tuple[str, str]]:
        return [
            (a["labels"]["alertname"], a["labels"].get("server") or a["labels"].get("client", ""))
            for a in self.alerts
            if severity is None or a["labels"]["severity"] == severity
        ]


def configs(lab: estate.Lab, topology: str, folder: Path) -> list[Path]:
    """One exporter over everything, or one per SEPM server plus one for the clients (docs/deployment.md).

    In the second, the client exporter also watches both servers (client state is judged against the
    group files), so the same server series arrive from two instances: the rules must not care.
    """
    if topology == "one exporter":
        return [lab.config_path]
    return estate.write_split_configs(lab, folder)


@pytest.fixture(params=[("one exporter", False), ("one per server", False), ("one exporter", True), ("one per server", True)],
                ids=["one exporter", "one per server", "one exporter, identical groups", "one per server, identical groups"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[estate.Lab, Receiver, Prometheus]]:
    topology, identical = request.param
    lab = estate.init(tmp_path / "lab", groups=2, clients=6, heartbeat_seconds=5, identical_groups=identical)
    receiver = Receiver()
    alertmanager = Alertmanager(
        tmp_path / "am",
        "route:\n  receiver: hook\n  group_by: [alertname, site]\n  group_wait: 1s\n  group_interval: 1s\n"
        "  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: {receiver.url}\n        send_resolved: false\n",
    )
    ports, exporters = [], []
    for number, config in enumerate(configs(lab, topology, tmp_path)):
        ports.append(free_port())
        exporters.append(start_exporter(config, ports[-1], "--watch.mode=events", log=tmp_path / f"exporter{number}.log"))
    targets = ", ".join(f"'127.0.0.1:{port}'" for port in ports)
    prometheus = Prometheus(
        tmp_path / "prom",
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: [{', '.join(repr(str(path)) for path in RULES)}]\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{alertmanager.port}']\n"
        f"scrape_configs:\n  - job_name: sepm\n    static_configs:\n      - targets: [{targets}]\n",
    )
    try:
        wait_for(lambda: len(prometheus.query('sepm_exporter_build_info{job="sepm"}')) == len(ports), timeout=30)
        yield lab, receiver, prometheus
    finally:
        prometheus.stop()
        for exporter in exporters:
            stop(exporter)
        alertmanager.stop()
        receiver.server.shutdown()


def test_a_new_key_warns_while_clients_trust_a_partner_and_pages_when_they_trust_none(
        stack: tuple[estate.Lab, Receiver, Prometheus]) -> None:
    lab, receiver, prometheus = stack
    lab.renew("SEPM1", new_key=True)
    changed = time.monotonic()
    wait_for(lambda: ("SEPMServerKeyChanged", "SEPM1") in receiver.names("warning"), timeout=30)
    print(f"key change delivered after {time.monotonic() - changed:.1f} s")
    assert receiver.names("critical") == [], "every client still trusts SEPM2: a rollout to watch, not a page"

    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    untrusted = {g.group_id for g in lab.state.groups} if not lab.state.identical_groups else {min(g.group_id for g in lab.state.groups)}
    wait_for(lambda: {a["labels"]["group_id"] for a in receiver.alerts if a["labels"]["alertname"] == "SEPMClientServerKeyUntrusted"}
             == untrusted, timeout=30)
    assert {name for name, _ in receiver.names("critical")} == {"SEPMClientServerKeyUntrusted"}, \
        "the clients are seen: they page, the key changes stay warnings"
    key_alert = next(a for a in receiver.alerts if a["labels"]["alertname"] == "SEPMServerKeyChanged")
    assert key_alert["labels"]["site"] == "tokyo"
    runbook = key_alert["annotations"]["runbook_url"]
    bases = {s["metric"]["url"] for s in prometheus.query("sepm_exporter_runbook_base_info")}
    assert runbook.endswith("/runbooks/SEPMServerKeyChanged.md") and runbook.removesuffix("SEPMServerKeyChanged.md") in bases
    assert "<h2>Fix</h2>" in get(runbook).decode(), "the link resolves on the exporter itself"
    pages = [a for a in receiver.alerts if a["labels"]["alertname"] == "SEPMClientServerKeyUntrusted"]
    assert len({a["labels"]["group_id"] for a in pages}) == len(untrusted), "one page per group, not one per client"
    assert sum(int(a["annotations"]["description"].split()[0]) for a in {a["labels"]["group_id"]: a for a in pages}.values()) == 6
    if lab.state.identical_groups:
        assert all(a["labels"]["group_set"] == ",".join(sorted(g.group_id for g in lab.state.groups)) for a in pages)


def test_keep_key_renewal_delivers_no_critical(stack: tuple[estate.Lab, Receiver, Prometheus]) -> None:
    lab, receiver, prometheus = stack
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    for group in lab.state.groups:  # the key is unchanged, so clients can still check in: most have
        lab.pull(0.5, group_id=group.group_id)
    # Past the heartbeat window (5 s x 1.5) the other half are stale: a warning, nothing more.
    wait_for(lambda: ("SEPMClientSyLinkStale", "") in receiver.names(), timeout=40)
    stale = [a for a in receiver.alerts if a["labels"]["alertname"] == "SEPMClientSyLinkStale"]
    assert all(a["labels"].get("group_id") for a in stale), "never a page without a group"
    assert prometheus.query('ALERTS{alertstate="firing",severity="critical"}') == []
    assert receiver.names("critical") == []
