"""The Grafana dashboard as code: `python grafana/dashboard.py` writes grafana/sepm-exporter.json.

Panels are plain dictionaries built by small helpers, so a review reads the queries, not 2,000 lines
of JSON. Every selector goes through `sel()`, which adds the job and instance matchers the linter
asks for. `--check` exits 1 when the committed JSON differs from what this file generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UID = "sepm-exporter"
TITLE = "SEPM certificates, SyLink.xml and clients"
OUTPUT = Path(__file__).with_name("sepm-exporter.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCOPE = 'job=~"$job",instance=~"$instance"'
SERVER = 'site=~"$site",server=~"$server"'
GROUP = 'group_id=~"$group"'

Json = dict[str, Any]


def sel(metric: str, *matchers: str) -> str:
    """A selector that always carries the job and instance matchers."""
    return metric + "{" + ",".join((SCOPE, *[m for m in matchers if m])) + "}"


@dataclass
class Target:
    """One query of a panel; `instant` for tables and stats that show the present."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass
class Panel:
    """A panel and the promise it makes: `incident` panels must show data after the incident replay."""

    kind: str
    title: str
    description: str
    unit: str
    targets: list[Target]
    width: int = 12
    height: int = 8
    incident: bool = False
    options: Json = field(default_factory=dict)
    defaults: Json = field(default_factory=dict)
    overrides: list[Json] = field(default_factory=list)
    transformations: list[Json] = field(default_factory=list)


def steps(*pairs: tuple[str, float | None]) -> Json:
    """Absolute thresholds from (colour, from-value) pairs; the first starts at minus infinity."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


def text_colours(field_name: str, colours: dict[str, str]) -> Json:
    """Colour a table column's cells by their text (SHA-1 in red)."""
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [
            {"id": "mappings", "value": [{"type": "value", "options": {k: {"color": v, "index": i} for i, (k, v) in
                                                                       enumerate(colours.items())}}]},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }


def series_colour(name: str, colour: str) -> Json:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}]}


UP_DOWN = [{"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0},
                                         "1": {"text": "up", "color": "green", "index": 1}}}]
PARITY = [{"type": "value", "options": {"0": {"text": "partners agree", "color": "green", "index": 0},
                                        "1": {"text": "partners disagree", "color": "red", "index": 1}}}]
HIDDEN = {"Time": True, "__name__": True, "job": True, "instance": True, "Value": True}


def certificate_panels() -> list[Panel]:
    days_left = f"({sel('sepm_certificate_not_after_timestamp_seconds', SERVER)} - time()) / 86400"
    embedded = f"sepm_sylink_certificate_not_after_timestamp_seconds{{{SCOPE},{SERVER},{GROUP}}}"
    return [
        Panel("stat", "Days to expiry: server certificates",
              "Days until each server certificate (apache/conf/ssl/server.crt) expires. Orange under 30 days, red "
              "under 7: renew before then, and keep the key unless every client already trusts a new one.",
              "d", [Target(days_left, "{{server}} {{file}}", instant=True)], incident=True,
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background", "textMode": "value_and_name"},
              defaults={"thresholds": steps(("red", None), ("orange", 7), ("green", 30)), "decimals": 0}),
        Panel("table", "Days to expiry: certificates embedded in group files",
              "The soonest expiry of each certificate embedded in the outbox SyLink.xml files of the selected "
              "groups, per server. Clients verify the server against these.",
              "d", [Target(f"min by (site, server, name) (({embedded} - time()) / 86400)", instant=True, table=True)],
              incident=True,
              defaults={"thresholds": steps(("red", None), ("orange", 7), ("green", 30)), "decimals": 0,
                        "custom": {"cellOptions": {"type": "color-text"}}},
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True},
                                                              "renameByName": {"Value": "days left"}}}]),
        Panel("table", "Signature hash and key size per server",
              "The signature hash and key of each server certificate. SHA-1 or MD5 (red) means the key is SHA-1 era: "
              "renewing it with 'generate new key' strands every client that only knows the old key.",
              "none", [Target(sel("sepm_certificate_info", SERVER), instant=True, table=True)], incident=True,
              overrides=[text_colours("signature_hash", {"sha1": "red", "md5": "red", "sha256": "green",
                                                         "sha384": "green", "sha512": "green"})],
              transformations=[{"id": "organize", "options": {"excludeByName": {**HIDDEN, "subject": True,
                                                                                "issuer": True, "serial": True},
                                                              "indexByName": {"site": 0, "server": 1, "file": 2}}}]),
        Panel("table", "When each server key last changed",
              "When the exporter first saw each server's current public key replace an earlier one, and the hash of "
              "the key it replaced. A change in the last few heartbeats is the moment clients get stranded.",
              "dateTimeAsIso",
              [Target(f"{sel('sepm_server_key_changed_timestamp_seconds', SERVER)} * 1000", instant=True, table=True),
               Target(sel("sepm_server_previous_key_info", SERVER), instant=True, table=True)],
              incident=True,
              transformations=[{"id": "merge", "options": {}},
                               {"id": "organize", "options": {"excludeByName": {"Time": True, "job": True, "instance": True,
                                                                                "__name__": True, "Value #B": True},
                                                              "renameByName": {"Value #A": "key changed",
                                                                               "signature_hash": "previous hash",
                                                                               "key_bits": "previous bits",
                                                                               "public_key_sha256": "previous key"}}}]),
    ]


def replication_panels() -> list[Panel]:
    return [
        Panel("state-timeline", "Replica parity per group",
              "Whether the replication partners hold the same canonical SyLink.xml for each group, over time. A red "
              "bar is how long they disagreed; one that outlasts a heartbeat window pages.",
              "none", [Target(f"max by (group_id) (sepm_sylink_replica_mismatch{{{SCOPE},{GROUP}}})", "{{group_id}}")],
              width=24, incident=True,
              options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
              defaults={"mappings": PARITY, "thresholds": steps(("green", None), ("red", 1))}),
        Panel("timeseries", "Group files without their server's current key",
              "Outbox SyLink.xml files, per server, that do not embed the server's current public key. Clients that "
              "download such a file cannot verify the server.",
              "short", [Target(f"count by (server) ({sel('sepm_sylink_server_key_match', SERVER, GROUP)} == 0)", "{{server}}"),
                        Target(f"count by (server) ({sel('sepm_sylink_server_key_match', SERVER, GROUP)})", "{{server}} groups")],
              incident=True, defaults={"min": 0, "custom": {"fillOpacity": 10}}),
    ]


CLIENT_STATES = {"current": "green", "stale": "orange", "untrusted": "red", "unmatched": "purple"}


def client_panels() -> list[Panel]:
    per_state = f"sum by (state) ({sel('sepm_group_clients', GROUP)})"
    return [
        Panel("timeseries", "Clients by state",
              "Clients of the selected groups by state: current (the group's newest file), stale (an older one), "
              "untrusted (no current server key: offline at the next heartbeat), unmatched (no known group file).",
              "short", [Target(per_state, "{{state}}")], incident=True,
              defaults={"min": 0, "custom": {"stacking": {"mode": "normal"}, "fillOpacity": 30}},
              overrides=[series_colour(s, c) for s, c in CLIENT_STATES.items()]),
        Panel("table", "Clients per group and state",
              "The same counts, one row per group: sort by untrusted or stale to find the groups to look at first.",
              "short", [Target(f"sum by (group_id, state) ({sel('sepm_group_clients', GROUP)})", instant=True, table=True)],
              incident=True,
              transformations=[{"id": "groupingToMatrix", "options": {"columnField": "state", "rowField": "group_id",
                                                                      "valueField": "Value"}}]),
        Panel("table", "Clients that do not trust a current server key",
              "Each client whose SyLink.xml embeds none of the servers' current keys, with its group. These go "
              "offline at their next heartbeat and need the file copied by hand.",
              "none", [Target(f"{sel('sepm_client_server_key_trusted')} == 0", instant=True, table=True)],
              width=24, incident=True,
              transformations=[{"id": "organize", "options": {"excludeByName": HIDDEN}}]),
    ]


def health_panels() -> list[Panel]:
    return [
        Panel("stat", "Watched roots",
              "Whether each server tree and client collection can be read. A root that is down shows no fresh facts.",
              "none", [Target(sel("sepm_exporter_root_up"), "{{server}}{{client_root}}", instant=True)], width=8,
              incident=True,
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background", "textMode": "value_and_name"},
              defaults={"mappings": UP_DOWN, "thresholds": steps(("red", None), ("green", 1))}),
        Panel("timeseries", "File errors by reason",
              "Files that fail now, by reason, and the rate at which files start failing. The table of the exporter's "
              "landing page names each file.",
              "short", [Target(f"sum by (reason) ({sel('sepm_exporter_file_error')})", "{{reason}}"),
                        Target(f"sum by (reason) (rate({sel('sepm_exporter_file_errors_total')}[$__rate_interval]))",
                               "{{reason}} new/s")],
              width=8, defaults={"min": 0}),
        Panel("timeseries", "Scan duration",
              "How long the last reconciliation scan of every watched file took, per exporter.",
              "s", [Target(sel("sepm_exporter_scan_duration_seconds"), "{{instance}}")], width=8, incident=True,
              defaults={"min": 0}),
        Panel("timeseries", "File events",
              "File-system events and reconciliation findings that led to a re-read, per second by kind.",
              "ops", [Target(f"sum by (kind) (rate({sel('sepm_exporter_events_total')}[$__rate_interval]))", "{{kind}}")],
              width=12, incident=True, defaults={"min": 0}),
        Panel("timeseries", "Watched files",
              "Files the exporter watches, by kind. A sudden drop means a share lost files or a root went away.",
              "short", [Target(f"sum by (kind) ({sel('sepm_exporter_files')})", "{{kind}}")], width=12, incident=True,
              defaults={"min": 0}),
    ]


ROWS: tuple[tuple[str, Any], ...] = (
    ("Certificates", certificate_panels),
    ("Replication", replication_panels),
    ("Clients", client_panels),
    ("Exporter health", health_panels),
)


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    targets = []
    for index, target in enumerate(panel.targets):
        ref = chr(ord("A") + index)
        targets.append({
            "datasource": DATASOURCE, "refId": ref, "expr": target.expr, "legendFormat": target.legend or "__auto",
            "instant": target.instant, "range": not target.instant, "format": "table" if target.table else "time_series",
        })
    return {
        "id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE, "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, **panel.defaults}, "overrides": panel.overrides},
        "options": panel.options, "targets": targets, "transformations": panel.transformations,
    }


def variable(name: str, label: str, query: str, all_value: str) -> Json:
    """A multi-select query variable through $datasource, refreshed when the time range changes."""
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
        "refresh": 2, "multi": True, "includeAll": True, "allValue": all_value, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "regex": "", "options": [],
    }


VARIABLES: tuple[tuple[str, str, str, str], ...] = (
    ("job", "Job", "label_values(sepm_exporter_build_info, job)", ".+"),
    ("instance", "Instance", 'label_values(sepm_exporter_build_info{job=~"$job"}, instance)', ".+"),
    ("site", "Site", f"label_values(sepm_certificate_info{{{SCOPE}}}, site)", ".*"),
    ("server", "Server", f'label_values(sepm_certificate_info{{{SCOPE},site=~"$site"}}, server)', ".*"),
    ("group", "Group", f'label_values(sepm_sylink_info{{{SCOPE},{SERVER}}}, group_id)', ".*"),
)

# (name, colour, expr, title, text, value is the time): a key change is placed at the moment it was seen,
# a SyLink.xml rewrite at the step where its mtime moved.
ANNOTATIONS: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("SyLink.xml changes", "blue",
     f"count by (server, group_id) (changes({sel('sepm_sylink_modified_timestamp_seconds', SERVER, GROUP)}[2m]) > 0)",
     "SyLink.xml rewritten", "{{server}} group {{group_id}}", False),
    ("Server key changes", "red",
     f"{sel('sepm_server_key_changed_timestamp_seconds', SERVER)} * 1000",
     "Server key changed", "{{server}}: clients must already trust the new key", True),
)


def build() -> Json:
    """The whole dashboard; deterministic, so the committed file can be compared byte for byte."""
    panels: list[Json] = []
    y = 0
    next_id = 1
    for title, make in ROWS:
        panels.append({"id": next_id, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id += 1
        y += 1
        x = 0
        row_height = 0
        for panel in make():
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(render_panel(panel, next_id, x, y))
            next_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    annotations = [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                    "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]
    for name, colour, expr, title, text, value_is_time in ANNOTATIONS:
        annotations.append({"name": name, "datasource": DATASOURCE, "enable": True, "iconColor": colour, "expr": expr,
                            "step": "60s", "titleFormat": title, "textFormat": text, "useValueForTime": value_is_time})
    return {
        "uid": UID, "title": TITLE,
        "description": "Certificate expiry and key identity of SEPM servers, SyLink.xml parity between replication "
                       "partners, and clients stranded on an old SyLink.xml. Data: sepm-exporter.",
        "tags": ["sepm", "symantec", "certificates", "sepm-exporter"],
        "editable": False, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"}, "timepicker": {}, "timezone": "", "weekStart": "", "liveNow": False,
        "fiscalYearStartMonth": 0, "id": None,
        "links": [{"title": "Runbooks", "type": "link", "icon": "doc", "targetBlank": True, "tooltip": "Alert runbooks",
                   "url": "https://github.com/sepm-exporter/sepm-exporter/tree/main/docs/runbooks"}],
        "annotations": {"list": annotations},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [], "includeAll": False, "multi": False},
            *[variable(*v) for v in VARIABLES],
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed JSON is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
