"""The incident, step by step, asserting the metric contract's values at each step."""

from __future__ import annotations

from collections.abc import Callable

from conftest import find, one
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter

CRT = "apache/conf/ssl/server.crt"  # the keystore (tomcat/etc/keystore.jks) is a certificate file too

Scan = Callable[[estate.Lab], Exporter]


def test_steady_legacy_pair(lab: estate.Lab, scan: Scan) -> None:
    text = scan(lab).exposition
    info = find(text, "sepm_certificate_info", server="SEPM1", file=CRT)
    assert len(info) == 1 and info[0][0]["signature_hash"] == "sha1" and info[0][0]["key_bits"] == "1024"
    assert info[0][0]["file"] == "apache/conf/ssl/server.crt" and info[0][0]["site"] == "tokyo"
    for group in lab.state.groups:
        assert one(text, "sepm_sylink_replica_mismatch", group_id=group.group_id) == 0
        assert one(text, "sepm_sylink_server_key_match", server="SEPM1", group_id=group.group_id) == 1
        assert one(text, "sepm_sylink_heartbeat_seconds", server="SEPM2", group_id=group.group_id) == 300
        assert one(text, "sepm_group_clients", group_id=group.group_id, state="current") == 4
    assert all(v == 1 for _, v in find(text, "sepm_client_sylink_current"))
    assert all(v == 1 for _, v in find(text, "sepm_client_server_key_trusted"))
    assert find(text, "sepm_server_key_changed_timestamp_seconds") == []
    assert one(text, "sepm_exporter_root_up", server="SEPM1") == 1
    assert one(text, "sepm_exporter_root_up", client_root=str(lab.clients_root)) == 1
    assert find(text, "sepm_exporter_file_error") == []


def test_new_key_renewal_strands_every_client(lab: estate.Lab, scan: Scan) -> None:
    scan(lab)  # the exporter has been running: it knows the old keys
    old_key = find(scan(lab).exposition, "sepm_certificate_info", server="SEPM1", file=CRT)[0][0]["public_key_sha256"]
    lab.renew("SEPM1", new_key=True)
    text = scan(lab).exposition
    assert one(text, "sepm_server_key_changed_timestamp_seconds", server="SEPM1") > 0
    previous = find(text, "sepm_server_previous_key_info", server="SEPM1")
    assert previous[0][0]["public_key_sha256"] == old_key and previous[0][0]["signature_hash"] == "sha1"
    group = lab.state.groups[0].group_id
    assert one(text, "sepm_sylink_server_key_match", server="SEPM1", group_id=group) == 0
    assert one(text, "sepm_sylink_server_key_match", server="SEPM2", group_id=group) == 1
    # SEPM2 still holds its old key, so clients can still reach one server.
    assert all(v == 1 for _, v in find(text, "sepm_client_server_key_trusted"))

    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    text = scan(lab).exposition
    assert one(text, "sepm_sylink_replica_mismatch", group_id=group) == 0  # partners agree...
    assert one(text, "sepm_sylink_server_key_match", server="SEPM2", group_id=group) == 1
    assert all(v == 0 for _, v in find(text, "sepm_client_server_key_trusted"))  # ...yet nobody can connect
    assert len(find(text, "sepm_client_server_key_trusted")) == 12
    assert one(text, "sepm_group_clients", group_id=group, state="untrusted") == 4
    assert one(text, "sepm_client_sylink_current", client="WS-0001") == 0
    stale_since = one(text, "sepm_client_sylink_stale_since_timestamp_seconds", client="WS-0001")
    new_mtime = one(text, "sepm_sylink_modified_timestamp_seconds", server="SEPM1", group_id=group)
    assert abs(stale_since - new_mtime) < 1


def test_keep_key_renewal_changes_no_key(lab: estate.Lab, scan: Scan) -> None:
    scan(lab)
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    text = scan(lab).exposition
    assert find(text, "sepm_server_key_changed_timestamp_seconds") == []
    assert all(v == 1 for _, v in find(text, "sepm_sylink_server_key_match"))
    assert all(v == 1 for _, v in find(text, "sepm_client_server_key_trusted"))
    assert all(v == 0 for _, v in find(text, "sepm_client_sylink_current"))  # stale, but trusted


def test_partial_pull_splits_current_and_stale(lab: estate.Lab, scan: Scan) -> None:
    scan(lab)
    lab.renew("SEPM1", new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    pulled = set(lab.pull(0.5))
    text = scan(lab).exposition
    for client in lab.state.clients:
        assert one(text, "sepm_client_sylink_current", client=client) == (1 if client in pulled else 0)
    counts = {s: sum(v for _, v in find(text, "sepm_group_clients", state=s)) for s in ("current", "stale")}
    assert counts == {"current": 6, "stale": 6}


def test_group_drift_on_one_partner(lab: estate.Lab, scan: Scan) -> None:
    group = lab.state.groups[1].group_id
    lab.drift("SEPM2", group)
    text = scan(lab).exposition
    assert one(text, "sepm_sylink_replica_mismatch", group_id=group) == 1
    assert one(text, "sepm_sylink_replica_mismatch", group_id=lab.state.groups[0].group_id) == 0
    assert one(text, "sepm_sylink_heartbeat_seconds", server="SEPM2", group_id=group) == 360
    # Clients of the group now hold an older version than the newest partner's file.
    assert one(text, "sepm_group_clients", group_id=group, state="stale") == 4


def test_group_appears_and_vanishes(lab: estate.Lab, scan: Scan) -> None:
    exporter = scan(lab)
    group = lab.add_group()
    exporter.full_scan()
    assert one(exporter.exposition, "sepm_sylink_replica_mismatch", group_id=group) == 0
    lab.remove_group(group)
    exporter.full_scan()
    assert find(exporter.exposition, "sepm_sylink_info", group_id=group) == []
    assert find(exporter.exposition, "sepm_sylink_replica_mismatch", group_id=group) == []


def test_root_vanishes_and_returns_keeping_facts(lab: estate.Lab, scan: Scan) -> None:
    exporter = scan(lab)
    before = find(exporter.exposition, "sepm_sylink_info", server="SEPM2")
    lab.vanish("SEPM2")
    exporter.full_scan()
    assert one(exporter.exposition, "sepm_exporter_root_up", server="SEPM2") == 0
    assert find(exporter.exposition, "sepm_sylink_info", server="SEPM2") == before  # last known facts kept
    lab.restore("SEPM2")
    exporter.full_scan()
    assert one(exporter.exposition, "sepm_exporter_root_up", server="SEPM2") == 1


def test_key_history_survives_a_restart(lab: estate.Lab, scan: Scan) -> None:
    scan(lab)
    lab.renew("SEPM1", new_key=True)
    changed = one(scan(lab).exposition, "sepm_server_key_changed_timestamp_seconds", server="SEPM1")
    assert one(scan(lab).exposition, "sepm_server_key_changed_timestamp_seconds", server="SEPM1") == changed


def test_client_matching_no_group_is_unmatched(lab: estate.Lab, scan: Scan) -> None:
    path = lab.client_path("WS-0001")
    path.write_bytes(path.read_bytes().replace(b'PullHeartbeatSeconds="300"', b'PullHeartbeatSeconds="999"'))
    text = scan(lab).exposition
    assert find(text, "sepm_client_sylink_current", client="WS-0001") == []
    assert find(text, "sepm_client_sylink_info", client="WS-0001")[0][0].get("group_id", "") == ""
    assert one(text, "sepm_group_clients", group_id="", state="unmatched") == 1


def test_broken_file_is_reported_and_the_rest_served(lab: estate.Lab, scan: Scan) -> None:
    good = scan(lab).exposition
    group = lab.state.groups[0].group_id
    lab.write_hostile("billion-laughs", lab.sylink_path("SEPM2", group))
    lab.write_hostile("truncated", lab.client_path("WS-0003"))
    text = scan(lab).exposition
    assert one(text, "sepm_exporter_file_error", server="SEPM2", reason="entity_expansion") == 1
    assert find(text, "sepm_exporter_file_error", server="SEPM2")[0][0]["file"] == (
        f"data/outbox/agent/{group}/SyLink.xml"
    )
    assert one(text, "sepm_exporter_file_error", client="WS-0003", reason="truncated_xml") == 1
    assert find(text, "sepm_sylink_info", server="SEPM2", group_id=group) == []
    assert find(text, "sepm_sylink_info", server="SEPM1") == find(good, "sepm_sylink_info", server="SEPM1")
    # Fixed: the error series goes.
    lab.publish("SEPM2")
    lab.pull(1.0)
    assert find(scan(lab).exposition, "sepm_exporter_file_error") == []
