"""The dashboard: generated, linted by the rules of Grafana's dashboard linter, and every query run on real data.

The linter's binary cannot run here, so the rules it applies to Prometheus dashboards are checked
below, one test each, named after the rule:

template-datasource-rule, template-job-rule, template-instance-rule, template-label-promql-rule,
template-on-time-change-reload-rule, template-uneditable-rule, panel-datasource-rule,
panel-title-description-rule, panel-units-rule, panel-no-targets-rule, target-promql-rule,
target-rate-interval-rule, target-job-rule, target-instance-rule, target-counter-agg-rule.

target-promql-rule is checked by Prometheus itself: every query is sent to a real one.
Grafana's own schema is checked by mypy: the generator is typed against grafana-foundation-sdk.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
import time
import tomllib
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

ROOT = Path(__file__).parent.parent.parent
GRAFANA = ROOT / "grafana"


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
TYPES: dict[str, str] = {**{name: family.type for name, family in BY_NAME.items()}, **GENERATOR.PENDING_FAMILIES}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def family_of(name: str) -> str | None:
    """The family a series name belongs to (a histogram's `_bucket` series to the histogram)."""
    if name in TYPES:
        return name
    for family, kind in TYPES.items():
        if any(name == family + suffix for suffix in SUFFIXES.get(kind, ())):
            return family
    return None


def families(panel: dict[str, Any]) -> set[str]:
    return {family_of(metric) or metric for target in panel["targets"] for metric, _ in SELECTOR.findall(target["expr"])}


def test_committed_json_is_the_generators_output() -> None:
    assert GENERATOR.render() == (GRAFANA / "sepm-exporter.json").read_text(encoding="utf-8"), \
        "grafana/sepm-exporter.json drifted: run python grafana/dashboard.py"
    assert GENERATOR.main(["--check"]) == 0


def test_identity_is_stable() -> None:
    assert (DASHBOARD["uid"], DASHBOARD["title"]) == ("sepm-exporter", "SEPM certificates, SyLink.xml and clients")
    assert DASHBOARD.get("id") is None and DASHBOARD["schemaVersion"] == 38  # the newest Grafana 10.1 knows
    assert len({p["id"] for p in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])
    assert all(p["id"] > 0 for p in DASHBOARD["panels"])
    assert len({v["id"] for v in VARIABLES.values()}) == len(VARIABLES), "Grafana keys variables by id"


def test_the_sdk_line_is_the_grafana_the_docs_support() -> None:
    """The SDK's version line names the Grafana whose schema it types; the docs and the pin must agree with it."""
    installed = importlib.metadata.version("grafana-foundation-sdk")
    line = installed.split("!")[-1]
    major_minor = ".".join(line.split(".")[:2])
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in pyproject["project"]["optional-dependencies"]["test"] if d.startswith("grafana-foundation-sdk")]
    assert pins == [f"grafana-foundation-sdk=={installed}"]
    assert f"**Grafana {major_minor} and later**" in (ROOT / "docs" / "grafana.md").read_text(encoding="utf-8")
    assert f"Grafana {major_minor}+" in (ROOT / "README.md").read_text(encoding="utf-8")


def _dropped(raw: Any, back: Any, path: str = "") -> list[str]:
    """Paths of `raw` that `back` lost or changed (keys `back` added, such as schema defaults, are fine)."""
    if isinstance(raw, dict) and isinstance(back, dict):
        return [p for k, v in raw.items()
                for p in ([f"{path}/{k}"] if k not in back else _dropped(v, back[k], f"{path}/{k}"))]
    if isinstance(raw, list) and isinstance(back, list) and len(raw) == len(back):
        return [p for i, (x, y) in enumerate(zip(raw, back, strict=True)) for p in _dropped(x, y, f"{path}[{i}]")]
    return [] if raw == back else [path]


def test_the_committed_json_reads_as_grafanas_schema() -> None:
    """Decoded into the SDK's models of Grafana 10.1's schema and encoded again, nothing is lost but the
    Prometheus annotation fields that the schema leaves to the data source plugin."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    back = __import__("json").loads(JSONEncoder().encode(Dashboard.from_json(DASHBOARD)))
    plugin_fields = {"step", "titleFormat", "textFormat", "useValueForTime"}
    expected = [f"/annotations/list[{i}]/{k}" for i, a in enumerate(DASHBOARD["annotations"]["list"]) for k in a
                if k in plugin_fields]
    assert sorted(_dropped(DASHBOARD, back)) == sorted(expected)


def test_panels_tile_the_grid() -> None:
    """Rows of whole 24-column lines, nothing overlapping: what the SDK's layout produced."""
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


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
        assert family_of(metric), f"{metric} is neither a published family nor one the dashboard awaits"
        assert 'job=~"$job"' in matchers, f"target-job-rule: {metric} in {expr}"
        assert 'instance=~"$instance"' in matchers, f"target-instance-rule: {metric} in {expr}"
        if TYPES[family_of(metric) or metric] == "counter":
            assert re.search(rf"(rate|increase)\({metric}\{{[^}}]*\}}\[\$__rate_interval\]\)", expr), \
                f"target-counter-agg-rule / target-rate-interval-rule: {expr}"
    for window in re.findall(r"\b(?:rate|irate|increase)\([^\[]*\[([^\]]+)\]", expr):
        assert window == "$__rate_interval", f"target-rate-interval-rule: {expr}"


def test_awaited_families_keep_their_type_once_published() -> None:
    for name, kind in GENERATOR.PENDING_FAMILIES.items():
        if name in BY_NAME:
            assert BY_NAME[name].type == kind, f"{name} is published as a {BY_NAME[name].type}"


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
    assert states == {"current", "stale", "untrusted", "unknown", "unmatched"}
    stranded = by_title["Stranded if renewed with a new key now"]
    steps = [(s["color"], s["value"]) for s in stranded["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert stranded["type"] == "stat" and steps == [("green", None), ("red", 1)]  # counts: 0 green, any client red
    rows = [p["title"] for p in DASHBOARD["panels"] if p["type"] == "row"]
    assert rows[3:6] == ["REST API: clients online and ready", "Served certificates", "Renewal plan"]
    assert {"sepm_api_group_clients", "sepm_api_group_clients_on_current_policy", "sepm_api_up",
            "sepm_replication_partner_status", "sepm_api_clients_last_checkin_age_seconds", "sepm_probe_up",
            "sepm_served_certificate_key_match", "sepm_server_keystore_key_match", "sepm_renewal_stranded_clients",
            "sepm_renewal_unknown_clients", "sepm_sylink_server_info"} <= set().union(*map(families, PANELS))
    assert {a["name"] for a in ANNOTATIONS} == {"SyLink.xml changes", "Server key changes"}


def test_provisioning_files() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sepm-exporter.yml").read_text(encoding="utf-8"))
    assert provider["apiVersion"] == 1
    assert provider["providers"][0]["type"] == "file" and provider["providers"][0]["options"]["path"]
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.example.yml").read_text(encoding="utf-8"))
    assert source["datasources"][0]["type"] == VARIABLES["datasource"]["query"]
    docs = (ROOT / "docs" / "grafana.md").read_text(encoding="utf-8")
    path = provider["providers"][0]["options"]["path"]
    assert "/var/lib/grafana/dashboards/sepm-exporter/" in docs and f":{path}/sepm-exporter.json:ro" in docs, \
        "the copy commands and the docker run example put the JSON where the provider reads it"


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
        wait_for(lambda: prometheus.query('sum(sepm_group_clients{job="sepm",state="current"}) == 12'), timeout=30)
        time.sleep(3)  # a few scrapes of the pair as it ran for years
        for server in ("SEPM1", "SEPM2"):
            lab.renew(server, new_key=True)
        lab.publish("SEPM1")
        wait_for(lambda: prometheus.query("max(sepm_sylink_replica_mismatch) == 1"), timeout=30)
        time.sleep(2)
        lab.replicate("SEPM1", "SEPM2")
        wait_for(lambda: prometheus.query("max(sepm_sylink_replica_mismatch) == 0"), timeout=30)
        wait_for(lambda: prometheus.query('sum(sepm_group_clients{state="untrusted"}) == 12'), timeout=30)
        wait_for(lambda: len(prometheus.query("sepm_client_server_key_trusted == 0")) == 12, timeout=30)
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


# Panels that read a family with no series in the incident replay, and what they wait for. A listed panel
# is excused only while one of its families is missing: once they all have series it must show data.
EMPTY_UNTIL = {
    "Server list in each group file": "sepm_sylink_server_info (the group file's server list)",
    "Online share per group": "the REST API source (issue 15)",
    "Clients on the group's current policy serial": "the REST API source (issue 15)",
    "REST API up": "the REST API source (issue 15)",
    "REST API errors and data age": "the REST API source (issue 15)",
    "Replication partners": "the REST API source (issue 15)",
    "Time since last check-in per group": "the REST API source (issue 15)",
    "TLS probes": "the TLS probes (issue 16)",
    "Served key matches server.crt": "the TLS probes (issue 16)",
    "Keystore key matches server.crt": "the keystore reader (issue 16)",
    "Stranded if renewed with a new key now": "the renewal what-if (issue 18)",
    "Trust unknown for that renewal": "the renewal what-if (issue 18)",
    "Stranded if renewed, over time": "the renewal what-if (issue 18)",
    "File errors by reason": "a file that fails (none does in the replay)",
}


def verdict(shows_data: dict[str, bool], scraped: set[str]) -> tuple[list[str], list[str]]:
    """(panels that should show data and do not, panels reading absent families that EMPTY_UNTIL does not name)."""
    empty, unlisted = [], []
    for panel in PANELS:
        missing = families(panel) - scraped
        if not missing and not shows_data[panel["title"]]:
            empty.append(panel["title"])
        if missing and panel["title"] not in EMPTY_UNTIL:
            unlisted.append(f"{panel['title']}: {sorted(missing)}")
    return empty, unlisted


def test_the_excuse_ends_when_the_families_appear() -> None:
    """EMPTY_UNTIL tightens by itself: once a listed panel's families have series, it must show data."""
    assert set(EMPTY_UNTIL) <= {p["title"] for p in PANELS}
    everything = set(TYPES)
    assert verdict(dict.fromkeys(EMPTY_UNTIL, False) | {p["title"]: True for p in PANELS if p["title"] not in EMPTY_UNTIL},
                   everything)[0] == sorted(EMPTY_UNTIL, key=[p["title"] for p in PANELS].index)
    without_api = everything - {n for n in TYPES if n.startswith("sepm_api_")}
    assert verdict({p["title"]: True for p in PANELS}, without_api)[1] == [], "API panels are listed"
    assert verdict({p["title"]: True for p in PANELS}, without_api - {"sepm_group_clients"})[1], \
        "a panel of a published family that loses its series is not excused"


@pytest.mark.e2e
def test_every_panel_query_evaluates_and_shows_data_where_its_families_exist(incident: Prometheus) -> None:
    scraped = {family_of(name) or name for name in incident.api("label/__name__/values")}
    shows_data = {}
    for panel in PANELS:
        results = []
        for target in panel["targets"]:
            expr = _substitute(target["expr"])
            results += incident.query(expr) if target["instant"] else _range(incident, target["expr"])
        shows_data[panel["title"]] = bool(results)
    empty, unlisted = verdict(shows_data, scraped)
    assert empty == [], f"panels whose families all have series returned nothing: {empty}"
    assert unlisted == [], f"panels reading families without series must be listed in EMPTY_UNTIL: {unlisted}"


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
    rollout = _range(incident, by_title["Rollout: clients on their group's newest SyLink.xml"]["targets"][1]["expr"])
    shares = [float(v) for _, v in rollout[0]["values"]]
    assert shares[0] == 1 and shares[-1] == 0, "every client on the newest file before the renewal, none after it"

