"""The Grafana dashboard as code: `python grafana/dashboard.py` writes grafana/sepm-exporter.json.

Built with grafana-foundation-sdk's typed builders for Grafana 10.1 (the oldest Grafana the dashboard
supports; later versions migrate it forward on load), so `mypy --strict` checks every panel, option and
enum against Grafana's own schema. Every selector goes through `sel()`, which adds the job and instance
matchers the linter asks for. `--check` exits 1 when the committed JSON differs from what this file
generates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig, VizLegendOptions, VizTooltipOptions
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

UID = "sepm-exporter"
TITLE = "SEPM certificates, SyLink.xml and clients"
OUTPUT = Path(__file__).with_name("sepm-exporter.json")
SCHEMA_VERSION = 38  # the newest schema Grafana 10.1 knows; later versions migrate it forward on load
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
SCOPE = 'job=~"$job",instance=~"$instance"'
SERVER = 'site=~"$site",server=~"$server"'
SERVER_ONLY = 'server=~"$server"'  # families of the API, probe and renewal sources carry no site label
GROUP = 'group_id=~"$group"'
CURRENT = 'state="current"'

# Families this dashboard reads before the exporter publishes them (their issues are open): name -> type.
# The tests accept them in queries and expect their panels empty until the families appear.
PENDING_FAMILIES: dict[str, str] = {
    "sepm_sylink_server_info": "gauge",
    "sepm_renewal_stranded_clients": "gauge",
    "sepm_renewal_unknown_clients": "gauge",
    "sepm_server_keystore_key_match": "gauge",
    "sepm_probe_up": "gauge",
    "sepm_served_certificate_key_match": "gauge",
    "sepm_api_up": "gauge",
    "sepm_api_last_success_timestamp_seconds": "gauge",
    "sepm_api_request_errors_total": "counter",
    "sepm_api_group_clients": "gauge",
    "sepm_api_group_info": "gauge",
    "sepm_api_group_clients_on_current_policy": "gauge",
    "sepm_api_clients_last_checkin_age_seconds": "histogram",
    "sepm_replication_partner_status": "gauge",
    "sepm_replication_last_success_timestamp_seconds": "gauge",
}


def sel(metric: str, *matchers: str) -> str:
    """A selector that always carries the job and instance matchers."""
    return metric + "{" + ",".join((SCOPE, *[m for m in matchers if m])) + "}"


def query(expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False) -> Dataquery:
    """One Prometheus query; `instant` for tables and stats that show the present."""
    target = Dataquery().expr(expr).legend_format(legend or "__auto").datasource(DATASOURCE)
    target = target.instant() if instant else target.range()
    return target.format(PromQueryFormat.TABLE if table_format else PromQueryFormat.TIME_SERIES)


class PanelBuilder(Protocol):
    """What every panel builder of the SDK offers; `card` fills it in the same way for each."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def with_target(self, target: Builder[variants.Dataquery]) -> Self: ...
    def id(self, id_val: int) -> Self: ...
    def build(self) -> model.Panel: ...


P = TypeVar("P", bound=PanelBuilder)


def card(panel: P, title: str, description: str, unit: str, targets: Sequence[Dataquery], width: int = 12,
         height: int = 8) -> P:
    """Title, description, data source, unit, size and queries (refIds A, B, ...) of a panel."""
    panel = panel.title(title).description(description).datasource(DATASOURCE).unit(unit).span(width).height(height)
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def steps(*pairs: tuple[str, float | None]) -> ThresholdsConfig:
    """Absolute thresholds from (colour, from-value) pairs; the first starts at minus infinity."""
    return ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(
        [model.Threshold(value=v, color=c) for c, v in pairs])


def value_texts(*entries: tuple[str, str, str]) -> list[model.ValueMapping]:
    """One value mapping from (value, text, colour) entries."""
    return [model.ValueMap(options={value: model.ValueMappingResult(text=text, color=colour, index=index)
                                    for index, (value, text, colour) in enumerate(entries)})]


def text_colours(colours: dict[str, str]) -> list[model.DynamicConfigValue]:
    """Colour a table column's cells by their text (SHA-1 in red)."""
    return [
        model.DynamicConfigValue(id_val="mappings", value=[model.ValueMap(options={
            k: model.ValueMappingResult(color=v, index=i) for i, (k, v) in enumerate(colours.items())})]),
        model.DynamicConfigValue(id_val="custom.cellOptions", value=common.TableColoredBackgroundCellOptions()),
    ]


def fixed_colour(colour: str) -> list[model.DynamicConfigValue]:
    return [model.DynamicConfigValue(id_val="color", value=model.FieldColor(
        mode=model.FieldColorModeId.FIXED, fixed_color=colour))]


def organize(exclude: Sequence[str] = (), rename: dict[str, str] | None = None,
             order: dict[str, int] | None = None) -> model.DataTransformerConfig:
    """Grafana's `organize` transformation: hide, rename and order table columns."""
    options: dict[str, object] = {"excludeByName": dict.fromkeys(exclude, True)}
    if rename:
        options["renameByName"] = rename
    if order:
        options["indexByName"] = order
    return model.DataTransformerConfig(id_val="organize", options=options)


MERGE = model.DataTransformerConfig(id_val="merge", options={})
UP_DOWN = value_texts(("0", "down", "red"), ("1", "up", "green"))
PARITY = value_texts(("0", "partners agree", "green"), ("1", "partners disagree", "red"))
MATCH = value_texts(("0", "differs", "red"), ("1", "matches", "green"))
HIDDEN = ("Time", "__name__", "job", "instance", "Value")
LAST = ReduceDataOptions().calcs(["lastNotNull"])


def big_values(panel: stat.Panel) -> stat.Panel:
    """A stat panel of one coloured tile per series, named after it."""
    return (panel.reduce_options(LAST).color_mode(common.BigValueColorMode.BACKGROUND)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME).graph_mode(common.BigValueGraphMode.NONE))


def rows_table() -> table.Panel:
    return table.Panel().show_header(True).cell_height(common.TableCellHeight.SM)


def lines(min_val: float | None = 0, *, fill: float = 10) -> timeseries.Panel:
    panel = (timeseries.Panel().fill_opacity(fill)
             .legend(VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM))
             .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)))
    return panel if min_val is None else panel.min(min_val)


AnyPanel = stat.Panel | table.Panel | timeseries.Panel | statetimeline.Panel | bargauge.Panel


def certificate_panels() -> list[AnyPanel]:
    days_left = f"({sel('sepm_certificate_not_after_timestamp_seconds', SERVER)} - time()) / 86400"
    embedded = sel("sepm_sylink_certificate_not_after_timestamp_seconds", SERVER, GROUP)
    expiry = steps(("red", None), ("orange", 7), ("green", 30))
    return [
        card(big_values(stat.Panel()).thresholds(expiry).decimals(0), "Days to expiry: server certificates",
             "Days until each server certificate expires: apache/conf/ssl/server.crt, the Tomcat keystore and what the "
             "probed endpoints serve (the file label tells them apart). Orange under 30 days, red under 7: renew before "
             "then, and keep the key unless every client already trusts a new one.",
             "d", [query(days_left, "{{server}} {{file}}", instant=True)]),
        card(rows_table().thresholds(expiry).decimals(0)
             .override_by_name("days left", [model.DynamicConfigValue(
                 id_val="custom.cellOptions", value=common.TableColorTextCellOptions())])
             .with_transformation(organize(["Time"], {"Value": "days left"})),
             "Days to expiry: certificates embedded in group files",
             "The soonest expiry of each certificate embedded in the outbox SyLink.xml files of the selected "
             "groups, per server. Clients verify the server against these.",
             "d", [query(f"min by (site, server, name) (({embedded} - time()) / 86400)", instant=True, table_format=True)]),
        card(rows_table()
             .override_by_name("signature_hash", text_colours({"sha1": "red", "md5": "red", "sha256": "green",
                                                               "sha384": "green", "sha512": "green"}))
             .with_transformation(organize([*HIDDEN, "subject", "issuer", "serial"],
                                           order={"site": 0, "server": 1, "file": 2})),
             "Signature hash and key size per server",
             "The signature hash and key of each server certificate. SHA-1 or MD5 (red) means the key is SHA-1 era: "
             "renewing it with 'generate new key' strands every client that only knows the old key.",
             "none", [query(sel("sepm_certificate_info", SERVER), instant=True, table_format=True)]),
        card(rows_table().with_transformation(MERGE).with_transformation(organize(
                 ["Time", "job", "instance", "__name__", "Value #B"],
                 {"Value #A": "key changed", "signature_hash": "previous hash", "key_bits": "previous bits",
                  "public_key_sha256": "previous key"})),
             "When each server key last changed",
             "When the exporter first saw each server's current public key replace an earlier one, and the hash of "
             "the key it replaced. A change in the last few heartbeats is the moment clients get stranded.",
             "dateTimeAsIso",
             [query(f"{sel('sepm_server_key_changed_timestamp_seconds', SERVER)} * 1000", instant=True, table_format=True),
              query(sel("sepm_server_previous_key_info", SERVER), instant=True, table_format=True)]),
    ]


def replication_panels() -> list[AnyPanel]:
    return [
        card(statetimeline.Panel().show_value(common.VisibilityMode.NEVER).merge_values(True).row_height(0.8)
             .mappings(PARITY).thresholds(steps(("green", None), ("red", 1))),
             "Replica parity per group",
             "Whether the replication partners hold the same canonical SyLink.xml for each group, over time. A red "
             "bar is how long they disagreed; one that outlasts a heartbeat window pages.",
             "none", [query(f"max by (group_id) ({sel('sepm_sylink_replica_mismatch', GROUP)})", "{{group_id}}")],
             width=24),
        card(lines(), "Group files without their server's current key",
             "Outbox SyLink.xml files, per server, that do not embed the server's current public key. Clients that "
             "download such a file cannot verify the server.",
             "short", [query(f"count by (server) ({sel('sepm_sylink_server_key_match', SERVER, GROUP)} == 0)", "{{server}}"),
                       query(f"count by (server) ({sel('sepm_sylink_server_key_match', SERVER, GROUP)})", "{{server}} groups")]),
        card(rows_table().with_transformation(organize(HIDDEN, order={"server": 0, "group_id": 1, "priority": 2})),
             "Server list in each group file",
             "The management servers each group's SyLink.xml names, per server copy: address, priority, ports and "
             "whether clients verify signatures. A client can fail over only to servers on this list.",
             "none", [query(sel("sepm_sylink_server_info", SERVER_ONLY, GROUP), instant=True, table_format=True)]),
    ]


CLIENT_STATES = {"current": "green", "stale": "orange", "untrusted": "red", "unknown": "blue", "unmatched": "purple"}


def client_panels() -> list[AnyPanel]:
    per_state = f"sum by (state) ({sel('sepm_group_clients', GROUP)})"
    panel = lines(fill=30).stacking(StackingConfig().mode(common.StackingMode.NORMAL))
    for state, colour in CLIENT_STATES.items():
        panel = panel.override_by_name(state, fixed_colour(colour))
    return [
        card(panel, "Clients by state",
             "Clients of the selected groups by state: current (the group's newest file), stale (an older one), "
             "untrusted (no current server key: offline at the next heartbeat), unknown (trust cannot be decided "
             "yet), unmatched (no known group file).",
             "short", [query(per_state, "{{state}}")]),
        card(rows_table().with_transformation(model.DataTransformerConfig(id_val="groupingToMatrix", options={
                 "columnField": "state", "rowField": "group_id", "valueField": "Value"})),
             "Clients per group and state",
             "The same counts, one row per group: sort by untrusted, unknown or stale to find the groups to look at first.",
             "short", [query(f"sum by (group_id, state) ({sel('sepm_group_clients', GROUP)})", instant=True,
                             table_format=True)]),
        card(rows_table().with_transformation(organize(HIDDEN)),
             "Clients that do not trust a current server key",
             "Each client whose SyLink.xml embeds none of the servers' current keys, with its group. These go "
             "offline at their next heartbeat and need the file copied by hand. Named from the clients' own "
             "series, which the exporter publishes for every client that needs action (clients.series: problems, "
             "the default, or all) up to clients.series_limit; the counts above include every client in any mode, "
             "and the landing page and check --stranded list them all.",
             "none", [query(f"({sel('sepm_client_server_key_trusted')} == 0) * on (client) group_left (group_id, group_set) "
                            f"max by (client, group_id, group_set) ({sel('sepm_client_sylink_info', GROUP)})",
                            instant=True, table_format=True)],
             width=24),
    ]


def api_panels() -> list[AnyPanel]:
    def per_group(expr: str) -> str:
        """Name each group by its full path from sepm_api_group_info."""
        info = f"max by (server, group_id, group) ({sel('sepm_api_group_info', SERVER_ONLY, GROUP)})"
        return f"({expr}) * on (server, group_id) group_left (group) {info}"

    clients = sel("sepm_api_group_clients", SERVER_ONLY, GROUP)
    online = sel("sepm_api_group_clients", SERVER_ONLY, GROUP, 'status="online"')
    on_policy = sel("sepm_api_group_clients_on_current_policy", SERVER_ONLY, GROUP)
    total = f"sum by (server, group_id) ({clients})"
    age = sel("sepm_api_clients_last_checkin_age_seconds_bucket", SERVER_ONLY, GROUP)
    return [
        card(lines().max(1), "Online share per group",
             "The share of each group's clients that SEPM's REST API reports online. A group that falls sharply "
             "after a key change is the outage confirmed: its clients could not verify the server.",
             "percentunit", [query(per_group(f"sum by (server, group_id) ({online}) / {total}"), "{{server}} {{group}}")]),
        card(bargauge.Panel().display_mode(common.BarGaugeDisplayMode.BASIC).reduce_options(LAST).min(0).max(1)
             .thresholds(steps(("red", None), ("orange", 0.5), ("green", 1))),
             "Clients on the group's current policy serial",
             "Per group, the share of clients whose policy serial equals the group's (Broadcom KB 187099): only "
             "these hold the newest communication settings. Swap a certificate when every group is green.",
             "percentunit", [query(per_group(f"sum by (server, group_id) ({on_policy}) / {total}"), "{{server}} {{group}}",
                                   instant=True)]),
        card(big_values(stat.Panel()).mappings(UP_DOWN).thresholds(steps(("red", None), ("green", 1))),
             "REST API up",
             "Whether the last poll of each server's REST API succeeded. Down keeps the last good figures (see their "
             "age in the API errors panel); the reason is in sepm_api_request_errors_total.",
             "none", [query(sel("sepm_api_up", SERVER_ONLY), "{{server}}", instant=True)], width=8),
        card(lines(), "REST API errors and data age",
             "Failed API requests per second by reason, and how old the last good poll is. Old figures mean the "
             "online and readiness panels show the past.",
             "short",
             [query(f"sum by (server, reason) (rate({sel('sepm_api_request_errors_total', SERVER_ONLY)}[$__rate_interval]))",
                    "{{server}} {{reason}}/s"),
              query(f"time() - {sel('sepm_api_last_success_timestamp_seconds', SERVER_ONLY)}", "{{server}} age (s)")],
             width=8),
        card(rows_table().with_transformation(MERGE).with_transformation(organize(
                 ["Time", "job", "instance", "__name__", "Value #A"], {"Value #B": "last success (s ago)"})),
             "Replication partners",
             "Each server's replication partners, the status code SEPM reports for them, and how long ago the last "
             "replication succeeded. Partners that stop replicating leave group files apart.",
             "s", [query(f"{sel('sepm_replication_partner_status', SERVER_ONLY)} == 1", instant=True, table_format=True),
                   query(f"time() - {sel('sepm_replication_last_success_timestamp_seconds', SERVER_ONLY)}", instant=True,
                         table_format=True)],
             width=8),
        card(lines(), "Time since last check-in per group",
             "The median and 95th percentile of how long ago each group's clients last checked in, from the API's "
             "check-in histogram. Past heartbeat plus randomization, clients are not talking to the server.",
             "s", [query(per_group(f"histogram_quantile(0.5, sum by (server, group_id, le) ({age}))"),
                         "{{server}} {{group}} median"),
                   query(per_group(f"histogram_quantile(0.95, sum by (server, group_id, le) ({age}))"),
                         "{{server}} {{group}} p95")],
             width=24),
    ]


def served_panels() -> list[AnyPanel]:
    def tiles(mappings: list[model.ValueMapping]) -> stat.Panel:
        return big_values(stat.Panel()).mappings(mappings).thresholds(steps(("red", None), ("green", 1)))

    return [
        card(tiles(UP_DOWN), "TLS probes",
             "Whether each configured endpoint (443, 8443, 8446, ...) answered the TLS handshake on the last probe.",
             "none", [query(sel("sepm_probe_up", SERVER_ONLY), "{{server}} {{endpoint}}", instant=True)], width=8),
        card(tiles(MATCH), "Served key matches server.crt",
             "Whether the key each endpoint serves is the server's current key on disk. Differs after a renewal: "
             "the service was not restarted, or Apache and Tomcat disagree.",
             "none", [query(sel("sepm_served_certificate_key_match", SERVER_ONLY), "{{server}} {{endpoint}}",
                            instant=True)], width=8),
        card(tiles(MATCH), "Keystore key matches server.crt",
             "Whether tomcat/etc/keystore.jks holds the same key as apache/conf/ssl/server.crt. A renewal that "
             "updated only one of them leaves the console, replication or web services on the other key.",
             "none", [query(sel("sepm_server_keystore_key_match", SERVER_ONLY), "{{server}}", instant=True)], width=8),
    ]


def renewal_panels() -> list[AnyPanel]:
    stranded = sel("sepm_renewal_stranded_clients", SERVER_ONLY)
    everything = [model.DynamicConfigValue(id_val="displayName", value="all servers at once")]
    clients = sel("sepm_group_clients", GROUP)
    return [
        card(big_values(stat.Panel()).thresholds(steps(("green", None), ("red", 1))).override_by_name("*", everything),
             "Stranded if renewed with a new key now",
             "Per server, how many clients a 'generate new key' renewal of that server would leave with no server "
             "they can verify. Green (0) means renewing it now strands nobody; red means wait for the rollout.",
             "short", [query(stranded, "{{server}}", instant=True)]),
        card(big_values(stat.Panel()).thresholds(steps(("green", None), ("orange", 1))).override_by_name("*", everything),
             "Trust unknown for that renewal",
             "Clients whose trust cannot be decided for the same what-if (no readable SyLink.xml, unknown group): "
             "counted apart, not as safe.",
             "short", [query(sel("sepm_renewal_unknown_clients", SERVER_ONLY), "{{server}}", instant=True)]),
        card(lines().max(1), "Rollout: clients on their group's newest SyLink.xml",
             "After a key change and publish, the share of clients that already pulled their group's newest file, "
             "which embeds the new key. Renew the next partner when this reaches 100 % and its stranded figure is 0.",
             "percentunit",
             [query(f"sum by (group_id) ({sel('sepm_group_clients', GROUP, CURRENT)}) / "
                    f"sum by (group_id) ({clients})", "{{group_id}}"),
              query(f"sum({sel('sepm_group_clients', GROUP, CURRENT)}) / sum({clients})", "all groups")]),
        card(lines(), "Stranded if renewed, over time",
             "The stranded figure per server over time: after a key change on one partner it falls to 0 for the other "
             "as clients pull the new file. That is when renewing the other becomes safe.",
             "short", [query(stranded, "{{server}}")]),
    ]


def health_panels() -> list[AnyPanel]:
    return [
        card(big_values(stat.Panel()).mappings(UP_DOWN).thresholds(steps(("red", None), ("green", 1))),
             "Watched roots",
             "Whether each server tree and client collection can be read. A root that is down shows no fresh facts.",
             "none", [query(sel("sepm_exporter_root_up"), "{{server}}{{client_root}}", instant=True)], width=8),
        card(lines(), "File errors by reason",
             "Files that fail now, by reason, and the rate at which files start failing. The table of the exporter's "
             "landing page names each file.",
             "short", [query(f"sum by (reason) ({sel('sepm_exporter_file_error')})", "{{reason}}"),
                       query(f"sum by (reason) (rate({sel('sepm_exporter_file_errors_total')}[$__rate_interval]))",
                             "{{reason}} new/s")],
             width=8),
        card(lines(), "Scan duration", "How long the last reconciliation scan of every watched file took, per exporter.",
             "s", [query(sel("sepm_exporter_scan_duration_seconds"), "{{instance}}")], width=8),
        card(lines(), "File events",
             "File-system events and reconciliation findings that led to a re-read, per second by kind.",
             "ops", [query(f"sum by (kind) (rate({sel('sepm_exporter_events_total')}[$__rate_interval]))", "{{kind}}")]),
        card(lines(), "Watched files",
             "Files the exporter watches, by kind. A sudden drop means a share lost files or a root went away.",
             "short", [query(f"sum by (kind) ({sel('sepm_exporter_files')})", "{{kind}}")]),
    ]


ROWS: tuple[tuple[str, Callable[[], list[AnyPanel]]], ...] = (
    ("Certificates", certificate_panels),
    ("Replication", replication_panels),
    ("Clients", client_panels),
    ("REST API: clients online and ready", api_panels),
    ("Served certificates", served_panels),
    ("Renewal plan", renewal_panels),
    ("Exporter health", health_panels),
)


def variable(name: str, label: str, expr: str, all_value: str) -> QueryVariable:
    """A multi-select query variable through $datasource, refreshed when the time range changes."""
    return (QueryVariable(name).id(name).label(label).query({"query": expr, "refId": f"{name}-values"})
            .datasource(DATASOURCE)
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True).all_value(all_value)
            .sort(model.VariableSort.ALPHABETICAL_ASC).regex("")
            .current(model.VariableOption(selected=True, text=["All"], value=["$__all"])))


VARIABLES: tuple[tuple[str, str, str, str], ...] = (
    ("job", "Job", "label_values(sepm_exporter_build_info, job)", ".+"),
    ("instance", "Instance", 'label_values(sepm_exporter_build_info{job=~"$job"}, instance)', ".+"),
    ("site", "Site", f"label_values(sepm_certificate_info{{{SCOPE}}}, site)", ".*"),
    ("server", "Server", f'label_values(sepm_certificate_info{{{SCOPE},site=~"$site"}}, server)', ".*"),
    ("group", "Group", f"label_values(sepm_sylink_info{{{SCOPE},{SERVER}}}, group_id)", ".*"),
)


class PrometheusAnnotationQuery(model.AnnotationQuery):
    """An annotation with the fields Grafana's Prometheus data source reads besides the 10.1 schema's own."""

    def __init__(self, step: str, title_format: str, text_format: str, use_value_for_time: bool) -> None:
        super().__init__()
        self.step = step
        self.title_format = title_format
        self.text_format = text_format
        self.use_value_for_time = use_value_for_time

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "step": self.step, "titleFormat": self.title_format,
                "textFormat": self.text_format, "useValueForTime": self.use_value_for_time}


class PrometheusAnnotation(AnnotationQuery):
    """The SDK's annotation builder over `PrometheusAnnotationQuery`."""

    def __init__(self, title_format: str, text_format: str, use_value_for_time: bool) -> None:
        super().__init__()
        self._internal = PrometheusAnnotationQuery("60s", title_format, text_format, use_value_for_time)


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


def build() -> model.Dashboard:
    """The whole dashboard; deterministic, so the committed file can be compared byte for byte."""
    board = (
        Dashboard(TITLE).uid(UID)
        .description("Certificate expiry and key identity of SEPM servers, SyLink.xml parity between replication "
                     "partners, clients stranded on an old SyLink.xml, what SEPM's REST API and the served "
                     "certificates confirm, and which renewal is safe now. Data: sepm-exporter.")
        .tags(["sepm", "symantec", "certificates", "sepm-exporter"])
        .readonly().tooltip(model.DashboardCursorSync.CROSSHAIR).version(1).refresh("1m")
        .time("now-24h", "now").timezone("").week_start("").fiscal_year_start_month(0).live_now(False)
        .link(DashboardLink("Runbooks").type(model.DashboardLinkType.LINK).icon("doc").target_blank(True)
              .tooltip("Alert runbooks").url("https://github.com/sepm-exporter/sepm-exporter/tree/main/docs/runbooks"))
        .with_variable(DatasourceVariable("datasource").id("datasource").label("Data source").type("prometheus")
                       .regex("").multi(False).include_all(False))
    )
    for spec in VARIABLES:
        board = board.with_variable(variable(*spec))
    for name, colour, expr, title, text, value_is_time in ANNOTATIONS:
        board = board.annotation(PrometheusAnnotation(title, text, value_is_time).name(name).datasource(DATASOURCE)
                                 .enable(True).hide(False).icon_color(colour).expr(expr))
    next_id = 1
    for title, make in ROWS:
        board = board.with_row(Row(title).id(next_id).collapsed(False))
        next_id += 1
        width = 0
        for panel in make():
            grid = panel.build().grid_pos
            width += grid.w if grid else 0
            board = board.with_panel(panel.id(next_id))
            next_id += 1
        if width % 24:
            raise ValueError(f"row {title!r}: panel widths add up to {width}, not whole lines of 24")
    dashboard = board.build()
    dashboard.schema_version = SCHEMA_VERSION
    return dashboard


def render() -> str:
    return JSONEncoder(indent=2, ensure_ascii=False).encode(build()) + "\n"


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
