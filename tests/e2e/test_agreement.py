"""One verdict everywhere: on every lab incident step, the alerts a real Prometheus fires from the
shipped rules are exactly the findings of `check` and of the landing page, by name, severity and
subject; and `check` exits 2 exactly when one is critical.

`check` is a one-shot scan on a copy of the state file (what `sepm-exporter check` runs). The
landing page's findings are those of the serving exporter that Prometheus scrapes: it runs in this
process (web server and watcher threads, as `serve` runs them), so the test reads the very Finding
objects the page renders.

Two estates, each with its own exporter and Prometheus reused across the steps: one group, and
three groups whose SyLink.xml files are byte-identical. Lab heartbeats are 3 s (a 4.5 s window, so a key
change holds 13.5 s: long enough for a loaded machine to see it on all three surfaces),
Prometheus scrapes and evaluates every second. The fixed `for:` holds (file errors, roots) are
set to zero in the test's copy of the rules, on the pager's side only: `check` reports those at
once by design, and tests/alerts/test_verdicts.py holds the shipped holds equal to the table.
The rules about the exporter's own target (alerts/exporter.rules.yml) are left out: `check` is the
exporter and has no finding for its own scrape.

The whole incident runs twice, once per `clients.series` mode that names clients: `problems` (the
default: series only for the clients that need action) and `all` (every client). The rules count
from the group families, so they must fire the same in both; in `problems` a healthy client has no
series at all, and every client a finding names has one.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from helpers import free_port, get, wait_for
from sepm_exporter.judge.findings import Severity, alert_subject, worst
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.serving.web import WebServer
from sepm_exporter.settings.config import load_config
from sepm_exporter.settings.webconfig import WebConfig
from sepm_exporter.sources.watcher import Watcher
from services import Prometheus

pytestmark = pytest.mark.e2e
TOP = Path(__file__).parent.parent.parent
Key = tuple[str, str, str]  # (alert, severity, subject)


def rules_without_fixed_holds(folder: Path) -> list[Path]:
    out = []
    for path in sorted((TOP / "alerts").glob("*.rules.yml")):
        if path.name == "exporter.rules.yml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data["groups"]:
            for rule in group["rules"]:
                rule.pop("for", None)
        target = folder / path.name
        target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        out.append(target)
    return out


class Estate:
    """A lab, its exporter (serve) and a Prometheus with the rules; `check` runs on a copy of the state."""

    def __init__(self, folder: Path, groups: int, clients: int, identical: bool, series: str) -> None:
        self.folder = folder
        self.series = series
        self.lab = estate.init(folder / "lab", groups=groups, clients=clients, heartbeat_seconds=3,
                               identical_groups=identical)
        self.port = free_port()
        config = dataclasses.replace(load_config(self.lab.config_path), watch_mode="events", debounce=0.05,
                                     client_series=series)
        self.served = Exporter(config)
        self.web = WebServer(self.served, WebConfig(), f"127.0.0.1:{self.port}", "/metrics")
        self.web.start()
        self.watcher = Watcher(self.served, config.watch_mode)
        self.watcher.start()
        self.served.full_scan()
        rules = ", ".join(f"'{p}'" for p in rules_without_fixed_holds(folder))
        self.prometheus = Prometheus(
            folder / "prom",
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: [{rules}]\n"
            f"scrape_configs:\n  - job_name: sepm\n    static_configs:\n      - targets: ['127.0.0.1:{self.port}']\n",
        )
        wait_for(lambda: self.prometheus.query('sepm_exporter_build_info{job="sepm"}'), timeout=60)
        self.log: list[str] = []

    def firing(self) -> set[Key]:
        out = set()
        for series in self.prometheus.query('ALERTS{alertstate="firing"}'):
            labels = series["metric"]
            out.add((labels["alertname"], labels["severity"], alert_subject(labels["alertname"], labels)))
        return out

    def landing(self) -> set[Key]:
        """The findings the landing page shows now: the serving exporter's report, which the page renders."""
        found = self.served.report().findings
        assert get(f"http://127.0.0.1:{self.port}/"), "the page renders these findings"
        return {(f.alert, f.severity.name.lower(), f.subject) for f in found}

    def check(self) -> tuple[set[Key], Severity, int]:
        """What `check` says now, on a copy of the serving exporter's state file (it must not write it)."""
        config = dataclasses.replace(load_config(self.lab.config_path), client_series=self.series)
        state = self.folder / "check-state.json"
        if config.state_file is not None and config.state_file.exists():
            shutil.copyfile(config.state_file, state)
        exporter = Exporter(dataclasses.replace(config, state_file=state))
        exporter.full_scan()
        found = exporter.report().findings  # what `check` prints and exits on
        counted = sum(exporter.derived.group_counts.values())
        readable = sum(1 for c in exporter.scanner.inventory.clients.values() if c.sylink.facts is not None)
        assert counted == readable, "per-group counts sum to the number of clients"
        return {(f.alert, f.severity.name.lower(), f.subject) for f in found}, worst(found), len(found)

    def settle(self, step: str, present: set[str], absent: frozenset[str] = frozenset(), timeout: float = 30) -> set[Key]:
        """Wait until the pager and `check` agree, with `present` alerts firing and `absent` ones not."""
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        while True:
            firing = self.firing()
            found, severity, _ = self.check()
            page = self.landing()
            names = {k[0] for k in firing}
            if firing == found == page and present <= names and not (absent & names):
                assert (severity == Severity.CRITICAL) == any(k[1] == "critical" for k in firing)
                self.named_in_series()
                self.log.append(f"{step}: agreed after {time.monotonic() - started:.1f} s on {sorted(firing)}")
                return firing
            if time.monotonic() > deadline:
                raise AssertionError(f"{step}: firing {sorted(firing)}, wanted {sorted(present)} and not {sorted(absent)}; "
                                     f"the pager fires {sorted(firing - found)} that check does not say; "
                                     f"check says {sorted(found - firing)} that does not fire; "
                                     f"the page differs from the pager by {sorted(page ^ firing)}")
            time.sleep(0.3)

    def named_in_series(self) -> None:
        """Per-client series follow the mode: every client a finding names has one; in `problems`, no other."""
        exposition = self.served.exposition.decode("utf-8")
        with_series = set(re.findall(r'^sepm_client_sylink_info\{client="([^"]*)"', exposition, re.M))
        named = {c for f in self.served.report().findings for c in f.clients}
        assert named <= with_series, f"named by a finding without a series: {sorted(named - with_series)}"
        if self.series == "problems":
            healthy = {n for n, v in self.served.derived.verdicts.items() if v.status.value == "current"}
            assert not healthy & with_series, f"healthy clients with series: {sorted(healthy & with_series)}"
        else:
            assert with_series == set(self.served.derived.verdicts)

    def close(self) -> None:
        self.prometheus.stop()
        self.watcher.stop()
        self.web.close()


def incident(env: Estate) -> None:
    """Every lab incident step, in order, on one estate."""
    lab = env.lab
    first = lab.state.groups[0].group_id
    env.settle("baseline: SHA-1 certificates", {"SEPMServerCertificateWeakSignature"})

    lab.renew("SEPM1", new_key=True)
    env.settle("new key on SEPM1", {"SEPMServerKeyChanged"})
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    untrusted = env.settle("new key on both, published", {"SEPMServerKeyChanged", "SEPMClientServerKeyUntrusted"})
    assert ("SEPMServerKeyChanged", "warning", "server SEPM1") in untrusted, "clients are seen: the untrusted page, not this"
    env.settle("new key: the windows pass", {"SEPMClientServerKeyUntrusted", "SEPMClientSyLinkStale"},
               frozenset({"SEPMServerKeyChanged"}))
    lab.pull(1.0)
    env.settle("clients import the new file", set(), frozenset({"SEPMClientServerKeyUntrusted", "SEPMClientSyLinkStale"}))

    lab.renew("SEPM1", new_key=False)
    lab.renew("SEPM2", new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    stale = env.settle("keep-key renewal, no pull", {"SEPMClientSyLinkStale"}, frozenset({"SEPMServerKeyChanged"}))
    assert {k[1] for k in stale if k[0] == "SEPMClientSyLinkStale"} == {"warning"}, "stale but trusted: a lagging rollout"
    lab.pull(0.5)
    partial = env.settle("half the clients pull", {"SEPMClientSyLinkStale"})
    assert {k[1] for k in partial if k[0] == "SEPMClientSyLinkStale"} == {"warning"}
    lab.pull(1.0)
    env.settle("every client pulls", set(), frozenset({"SEPMClientSyLinkStale"}))

    lab.drift("SEPM2", first, heartbeat_seconds=2)  # a short heartbeat keeps the window short
    env.settle("drift on SEPM2", {"SEPMSyLinkReplicaMismatch"})
    lab.replicate("SEPM1", "SEPM2")
    env.settle("replication repairs the drift", set(), frozenset({"SEPMSyLinkReplicaMismatch"}))

    lab.vanish("SEPM2")
    env.settle("SEPM2's share drops", {"SEPMExporterRootDown"})
    lab.restore("SEPM2")
    env.settle("the share returns", set(), frozenset({"SEPMExporterRootDown"}))

    for valid_days, age_days, alert in ((20, 0.0, "SEPMServerCertificateExpiringSoon"),
                                        (3, 0.0, "SEPMServerCertificateExpiryImminent"),
                                        (1, 3.0, "SEPMServerCertificateExpired")):
        lab.renew("SEPM1", new_key=False, valid_days=valid_days, age_days=age_days)
        env.settle(f"expiry: {alert}", {alert})
    lab.renew("SEPM1", new_key=False)
    env.settle("renewed for ten years", set(), frozenset({"SEPMServerCertificateExpired"}))

    lab.renew("SEPM2", new_key=True, bits=1024)
    env.settle("weak key on SEPM2", {"SEPMServerCertificateWeakKey", "SEPMServerKeyChanged"})
    env.settle("weak key: SEPM2's outbox lags its key", {"SEPMSyLinkServerKeyMismatch"}, frozenset({"SEPMServerKeyChanged"}))
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    lab.pull(1.0)
    env.settle("outboxes and clients catch up", {"SEPMServerCertificateWeakKey"},
               frozenset({"SEPMSyLinkServerKeyMismatch", "SEPMClientSyLinkStale"}))

    lab.write_hostile("truncated", lab.client_path(sorted(lab.state.clients)[0]))
    env.settle("a hostile client file", {"SEPMExporterFileErrors"})


@pytest.mark.parametrize("series", ["problems", "all"])
@pytest.mark.parametrize("shapes", [[("one group", 1, 6, False), ("identical groups", 3, 20, True)]], ids=["both estates"])
def test_pager_and_check_agree_on_every_incident_step(tmp_path: Path, shapes: list[tuple[str, int, int, bool]],
                                                      series: str) -> None:
    started = time.monotonic()
    envs = [Estate(tmp_path / name.replace(" ", "-"), groups, clients, identical, series)
            for name, groups, clients, identical in shapes]
    errors: list[BaseException] = []

    def run(env: Estate) -> Callable[[], None]:
        def body() -> None:
            try:
                incident(env)
            except BaseException as exc:  # handed to the main thread
                errors.append(exc)
        return body

    threads = [threading.Thread(target=run(env)) for env in envs]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
    finally:
        for env in envs:
            env.close()
    for env in envs:
        print("\n".join(env.log))
    print(f"agreement on {len(envs)} estates ({series}) in {time.monotonic() - started:.1f} s")
    if errors:
        raise errors[0]
