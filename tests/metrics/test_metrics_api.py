"""The API families: valid exposition (histogram included), the last good figures kept while down,
and the database certificate inside the file side's certificate families, surviving re-scans."""

from __future__ import annotations

import datetime as dt

from conftest import samples
from sepm_exporter.lab import estate, pki
from sepm_exporter.metrics import api as api_metrics
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm.certificate import parse_certificate_file
from sepm_exporter.sepm.rest import Computer, Group, Partner, Snapshot, Tally
from sepm_exporter.settings.config import load_config
from sepm_exporter.sources.api import ApiState


def snapshot() -> Snapshot:
    tally = Tally([Group("G1", "My Company\\Sales \"EU\"", "00A1-01/02/2026 03:04:05 006")], now=1000.0)
    tally.add(Computer("G1", True, 995.0, "00A1-01/02/2026 03:04:05 006"))
    tally.add(Computer("G1", False, 100.0, "0001-x"))
    return Snapshot(1000.0, tally.summaries(), {"online": 1, "offline": 1},
                    (Partner("osaka", "RUNNING_SOMETHING_NEW", 900.0),), "")


def test_families_render_to_a_valid_exposition(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    state = ApiState("SEPM1", "tokyo", True, 1000.0, {"timeout": 2}, "", snapshot())
    exporter.publish(api_metrics.families([state, ApiState("SEPM2", "osaka")]))
    found = samples(exporter.exposition)
    assert found[("sepm_api_up", frozenset({("server", "SEPM1")}))] == 1.0
    assert found[("sepm_api_up", frozenset({("server", "SEPM2")}))] == 0.0
    assert found[("sepm_api_request_errors_total", frozenset({("server", "SEPM1"), ("reason", "timeout")}))] == 2.0
    assert found[("sepm_api_request_errors_total", frozenset({("server", "SEPM2"), ("reason", "tls")}))] == 0.0
    ids = {("server", "SEPM1"), ("group_id", "G1")}
    assert found[("sepm_api_group_clients", frozenset(ids | {("status", "offline")}))] == 1.0
    # 2026-01-02 03:04:05.006 UTC, to the millisecond
    assert found[("sepm_api_group_policy_timestamp_seconds", frozenset(ids))] == 1767323045.006
    # the deprecated family, kept for the contract: the serial's hex prefix (the group id's first digits), a constant
    assert found[("sepm_api_group_policy_serial", frozenset(ids))] == 0xA1
    assert found[("sepm_api_group_clients_on_current_policy", frozenset(ids))] == 1.0
    assert found[("sepm_api_group_info", frozenset(ids | {("group", "My Company\\Sales \"EU\"")}))] == 1.0
    assert found[("sepm_api_clients_last_checkin_age_seconds_bucket", frozenset(ids | {("le", "10.0")}))] == 1.0
    assert found[("sepm_api_clients_last_checkin_age_seconds_bucket", frozenset(ids | {("le", "900.0")}))] == 2.0
    assert found[("sepm_api_clients_last_checkin_age_seconds_count", frozenset(ids))] == 2.0
    assert found[("sepm_api_clients_last_checkin_age_seconds_sum", frozenset(ids))] == 905.0
    partner = {("server", "SEPM1"), ("partner", "osaka")}
    assert found[("sepm_replication_partner_status", frozenset(partner | {("status", "RUNNING_SOMETHING_NEW")}))] == 1.0
    assert found[("sepm_replication_partner_status", frozenset(partner | {("status", "SUCCEEDED")}))] == 0.0
    assert found[("sepm_replication_last_success_timestamp_seconds", frozenset(partner))] == 900.0
    assert b"# TYPE sepm_api_clients_last_checkin_age_seconds histogram\n" in exporter.exposition


def test_database_certificate_joins_the_certificate_families_and_survives_rescans(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pem = pki.pem(pki.ca(pki.new_key(1024), "db root", now, now + dt.timedelta(days=20)))
    state = ApiState("SEPM1", "tokyo", True, 1.0, {}, "", snapshot(), parse_certificate_file(pem))
    exporter.add_server_samples(api_metrics.SOURCE, api_metrics.certificate_families([state]))
    key = ("sepm_certificate_not_after_timestamp_seconds",
           frozenset({("server", "SEPM1"), ("site", "tokyo"), ("file", api_metrics.DATABASE_FILE)}))
    files = {dict(labels)["file"] for name, labels in samples(exporter.exposition) if name == "sepm_certificate_info"}
    assert files == {"apache/conf/ssl/server.crt", "tomcat/etc/keystore.jks", api_metrics.DATABASE_FILE}
    lab.renew("SEPM1", new_key=False)  # the file side re-renders its certificate families
    exporter.full_scan()
    assert samples(exporter.exposition)[key] == (now + dt.timedelta(days=20)).timestamp()
    exporter.add_server_samples(api_metrics.SOURCE, api_metrics.certificate_families([]))  # gone from the API
    assert key not in samples(exporter.exposition)
    assert len([n for n, _ in samples(exporter.exposition) if n == "sepm_certificate_info"]) == 4  # server.crt, keystore x 2


def test_the_deprecated_serial_prefix_reads_only_a_hex_prefix_before_a_dash() -> None:
    from sepm_exporter.metrics.api import serial_prefix

    assert serial_prefix("B890-12/07/2026 01:02:03 004") == 0xB890
    assert [serial_prefix(s) for s in ("", "B890", "-12/07", "XYZ1-12/07", "123456789-1")] == [None] * 5

