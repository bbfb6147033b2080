"""The dashboard: generated, linted by the rules of Grafana's dashboard linter, and every query run on real data.

The linter's binary cannot run here, so the rules it applies to Prometheus dashboards are checked
below, one test each, named after the rule:

template-datasource-rule, template-job-rule, template-instance-rule, template-label-promql-rule,
template-on-time-change-reload-rule, template-uneditable-rule, panel-datasource-rule,
panel-title-description-rule, panel-units-rule, panel-no-targets-rule, target-promql-rule,
target-rate-interval-rule, target-job-rule, target-instance-rule, target-counter-agg-rule.

target-promql-rule is checked by Prometheus itself: every query is sent to a real one.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from helpers import free_port, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.metrics.catalog import BY_NAME
from services import Prometheus

GRAFANA = Path(__file__).parent.parent.parent / "grafana"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboard", GRAFANA / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dashboard"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


GENERATOR = _load()
DASHBOARD: dict[str, Any] = __import__("json").loads((GRAFANA / "sepm-exporter.json").read_text(encoding="utf-8"))
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
VARIABLES = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
ANNOTATIONS = [a for a in DASHBOARD["annotations"]["list"] if a.get("expr")]
EXPRS = [t["expr"] for p in PANELS for t in p["targets"]] + [a["expr"] for a in ANNOTATIONS]
VALID_UNITS = {"none", "short", "percent", "percentunit", "s", "ms", "d", "h", "m", "dtdurations", "dateTimeAsIso",
               "dateTimeFromNow", "ops", "cps", "bytes", "decbytes"}  # the subset of Grafana's unit ids used here


def test_committed_json_is_the_generators_output() -> None:
    assert GENERATOR.render() == (GRAFANA / "sepm-exporter.json").read_text(encoding="utf-8"), \
        "grafana/sepm-exporter.json drifted: run python grafana/dashboard.py"
    assert GENERATOR.main(["--check"]) == 0


def test_identity_is_stable() -> None:
    assert (DASHBOARD["uid"], DASHBOARD["title"]) == ("sepm-exporter", "SEPM certificates, SyLink.xml and clients")
    assert DASHBOARD["id"] is None and DASHBOARD["schemaVersion"] >= 36  # Grafana 10 reads 36 and later
    assert len({p["id"] for p in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


def test_template_datasource_rule() -> None:
    sources = [v for v in VARIABLES.values() if v["type"] == "datasource"]
    assert len(sources) == 1
    assert (sources[0]["name"], sources[0]["label"], sources[0]["query"]) == ("datasource", "Data source", "prometheus")
    assert "__inputs" not in DASHBOARD  # file provisioning would leave ${DS_...} unresolved


@pytest.mark.parametrize("name", ["job", "instance"])
def test_template_job_and_instance_rules(name: str) -> None:
    variable = VARIABLES[name]
    assert variable["type"] == "query" and variable["datasource"]["uid"] in ("$datasource", "${datasource}")
    assert variable["label"] == name.title() and variable["multi"] is True and variable["allValue"] == ".+"


def test_template_label_promql_rule_and_reload() -> None:
    for variable in VARIABLES.values():
        if variable["type"] != "query":
            continue
        assert re.fullmatch(r"label_values\((sepm_[a-z_]+)(\{[^}]*\})?, *([a-z_]+)\)", variable["query"]["query"])
        assert variable["datasource"]["uid"] == "${datasource}"
        assert variable["refresh"] == 2, "template-on-time-change-reload-rule"
    assert [n for n in VARIABLES if n in ("site", "server", "group")] == ["site", "server", "group"]


def test_template_uneditable_rule() -> None:
    assert DASHBOARD["editable"] is False


def test_panel_rules() -> None:
    assert len(PANELS) >= 12
    for panel in PANELS:
        name = panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", f"panel-datasource-rule: {name}"
        assert panel["title"] and len(panel["description"]) > 40, f"panel-title-description-rule: {name}"
        assert panel["fieldConfig"]["defaults"]["unit"] in VALID_UNITS, f"panel-units-rule: {name}"
        assert panel["targets"], f"panel-no-targets-rule: {name}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


SELECTOR = re.compile(r"\b((?:sepm|process)_[a-z_:]+)(\{[^}]*\})?")


@pytest.mark.parametrize("expr", EXPRS)
def test_target_rules(expr: str) -> None:
    selectors = SELECTOR.findall(expr)
    assert selectors
    for metric, matchers in selectors:
        assert metric in BY_NAME, f"{metric} is not a published family"
        assert 'job=~"$job"' in matchers, f"target-job-rule: {metric} in {expr}"
        assert 'instance=~"$instance"' in matchers, f"target-instance-rule: {metric} in {expr}"
        if BY_NAME[metric].type == "counter":
            assert re.search(rf"(rate|increase)\({metric}\{{[^}}]*\}}\[\$__rate_interval\]\)", expr), \
                f"target-counter-agg-rule / target-rate-interval-rule: {expr}"
    for window in re.findall(r"\b(?:rate|irate|increase)\([^\[]*\[([^\]]+)\]", expr):
        assert window == "$__rate_interval", f"target-rate-interval-rule: {expr}"


def test_the_panels_an_admin_comes_for_are_there() -> None:
    by_title = {p["title"]: p for p in PANELS}
    expiry = by_title["Days to expiry: server certificates"]
    steps = [(s["color"], s["value"]) for s in expiry["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [("red", None), ("orange", 7), ("green", 30)]
    hashes = by_title["Signature hash and key size per server"]["fieldConfig"]["overrides"][0]
    assert hashes["matcher"]["options"] == "signature_hash"
    assert hashes["properties"][0]["value"][0]["options"]["sha1"]["color"] == "red"
    assert by_title["Replica parity per group"]["type"] == "state-timeline"
    states = {o["matcher"]["options"] for o in by_title["Clients by state"]["fieldConfig"]["overrides"]}
    assert states == {"current", "stale", "untrusted", "unmatched"}
    assert {a["name"] for a in ANNOTATIONS} == {"SyLink.xml changes", "Server key changes"}


def test_provisioning_files() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sepm-exporter.yml").read_text(encoding="utf-8"))
    assert provider["apiVersion"] == 1
    assert provider["providers"][0]["type"] == "file" and provider["providers"][0]["options"]["path"]
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.example.yml").read_text(encoding="utf-8"))
    assert source["datasources"][0]["type"] == VARIABLES["datasource"]["query"]


# --- every query against a real Prometheus that watched the incident happen ---------------------

def _substitute(expr: str) -> str:
    """What Grafana sends with every variable on All."""
    for name, variable in VARIABLES.items():
        if variable["type"] == "query":
            expr = expr.replace(f"${name}", variable["allValue"])
    return expr.replace("$__rate_interval", "1m")


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    tmp = tmp_path_factory.mktemp("dashboard")
    lab = estate.init(tmp / "lab", groups=3, clients=12)
    port = free_port()
    exporter = start_exporter(lab.config_path, port, "--watch.mode=events", log=tmp / "exporter.log")
    prometheus = Prometheus(
        tmp / "prom",
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sepm\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n",
    )
    try:
        wait_for(lambda: prometheus.query('sum(sepm_client_server_key_trusted{job="sepm"}) == 12'), timeout=30)
        time.sleep(3)  # a few scrapes of the pair as it ran for years
        for server in ("SEPM1", "SEPM2"):
            lab.renew(server, new_key=True)
        lab.publish("SEPM1")
        wait_for(lambda: prometheus.query("max(sepm_sylink_replica_mismatch) == 1"), timeout=30)
        time.sleep(2)
        lab.replicate("SEPM1", "SEPM2")
        wait_for(lambda: prometheus.query("max(sepm_sylink_replica_mismatch) == 0"), timeout=30)
        wait_for(lambda: prometheus.query("sum(sepm_client_server_key_trusted) == 0"), timeout=30)
        time.sleep(2)
        yield prometheus
    finally:
        prometheus.stop()
        stop(exporter)


def _range(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    now = time.time()
    return list(prometheus.api("query_range", query=_substitute(expr), start=str(now - 300), end=str(now),
                               step="1")["result"])


@pytest.mark.e2e
def test_every_variable_lists_values(incident: Prometheus) -> None:
    for name, variable in VARIABLES.items():
        if variable["type"] != "query":
            continue
        metric, matchers, label = re.fullmatch(r"label_values\(([a-z_]+)(\{[^}]*\})?, *([a-z_]+)\)",
                                               variable["query"]["query"]).groups()  # type: ignore[union-attr]
        values = incident.api(f"label/{label}/values", **{"match[]": _substitute(metric + (matchers or ""))})
        assert values, f"variable {name} lists nothing"
    sites = incident.api("label/site/values", **{"match[]": "sepm_certificate_info"})
    assert sorted(sites) == ["osaka", "tokyo"]


@pytest.mark.e2e
def test_every_panel_query_evaluates_and_incident_panels_show_it(incident: Prometheus) -> None:
    empty = []
    for panel in PANELS:
        results = []
        for target in panel["targets"]:
            expr = _substitute(target["expr"])
            results += incident.query(expr) if target["instant"] else _range(incident, target["expr"])
        if GENERATOR_INCIDENT.get(panel["title"]) and not results:
            empty.append(panel["title"])
    assert empty == [], f"panels meant to show the incident returned nothing: {empty}"


@pytest.mark.e2e
def test_the_incident_is_visible_where_an_admin_looks(incident: Prometheus) -> None:
    by_title = {p["title"]: p for p in PANELS}
    parity = _range(incident, by_title["Replica parity per group"]["targets"][0]["expr"])
    assert len(parity) == 3 and all({v for _, v in s["values"]} == {"0", "1"} for s in parity), \
        "the state timeline shows each group disagreeing, then agreeing again"
    untrusted = incident.query(_substitute(by_title["Clients that do not trust a current server key"]["targets"][0]["expr"]))
    assert len(untrusted) == 12
    changed = incident.query(_substitute(by_title["When each server key last changed"]["targets"][1]["expr"]))
    assert sorted((r["metric"]["server"], r["metric"]["signature_hash"]) for r in changed) == [("SEPM1", "sha1"), ("SEPM2", "sha1")]
    for annotation in ANNOTATIONS:
        assert _range(incident, annotation["expr"]), f"annotation {annotation['name']} shows nothing"
    states = {s["metric"]["state"] for s in _range(incident, by_title["Clients by state"]["targets"][0]["expr"])}
    assert {"current", "untrusted"} <= states


GENERATOR_INCIDENT = {
    panel.title: panel.incident for _, make in GENERATOR.ROWS for panel in make()
}
