"""Real estates: identical group files, split topologies, and the server list each group file carries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import every_client, find
from sepm_exporter.judge.clients import TrustBasis, set_label, trust
from sepm_exporter.judge.findings import findings
from sepm_exporter.lab import estate
from sepm_exporter.lab.sylink_writer import render
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config


def scan(config: Path) -> Exporter:
    exporter = Exporter(every_client(load_config(config)))  # reads healthy clients' lines too
    exporter.full_scan()
    return exporter


def counts(exporter: Exporter) -> dict[tuple[str, str, str], float]:
    return {(labels["group_id"], labels.get("group_set", ""), labels["state"]): value
            for labels, value in find(exporter.exposition, "sepm_group_clients")}


def test_identical_group_files_lose_no_client(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=3, clients=20, identical_groups=True)
    groups = sorted(g.group_id for g in lab.state.groups)
    assert len({lab.sylink_path("SEPM1", g).read_bytes() for g in groups}) == 1, "byte-identical group files"
    exporter = scan(lab.config_path)
    shared = ",".join(groups)
    assert counts(exporter)[(groups[0], shared, "current")] == 20
    assert sum(counts(exporter).values()) == 20
    current = find(exporter.exposition, "sepm_client_sylink_current", client="WS-0002")
    assert current == [({"client": "WS-0002", "group_id": groups[0], "group_set": shared}, 1.0)]

    lab.renew("SEPM1", new_key=False)
    lab.renew("SEPM2", new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    lab.age(3600)  # a heartbeat has passed; nobody pulled
    exporter = scan(lab.config_path)
    assert counts(exporter)[(groups[0], shared, "stale")] == 20 and sum(counts(exporter).values()) == 20
    stale = [f for f in findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
             if f.alert == "SEPMClientSyLinkStale"]
    # keep-key: stale but trusted, a lagging rollout
    assert [(f.severity.name, f.subject, len(f.clients)) for f in stale] == [("WARNING", f"groups {shared}", 20)]
    assert stale[0].since is not None and "shared by groups" in stale[0].message


def test_set_label_names_at_most_four_groups() -> None:
    assert set_label(["B", "A"]) == "A,B"
    assert set_label(["A"]) == ""
    assert set_label([f"G{i}" for i in range(6)]) == "G0,G1,G2,G3,+2"


def test_trust_is_three_valued() -> None:
    basis = TrustBasis(current=frozenset({"k1new", "k2"}), names=frozenset({"sepm1", "sepm2"}),
                       known=frozenset({"k1new", "k1old", "k2"}))
    assert trust([("SEPM1", "k1old"), ("SEPM2", "k2")], basis) is True
    assert trust([("SEPM1", "k1old"), ("SEPM2", "k2old")], basis) is False, "both listed servers watched, by name"
    assert trust([("sepm1.corp.local", "k1old")], basis) is False, "matched by a key the server had"
    assert trust([("SEPM1", "k1old"), ("SEPM3", "k3")], basis) is None, "SEPM3 is not watched here"
    assert trust([("SEPM1", None)], basis) is False
    assert trust([], basis) is None
    assert trust([("SEPM1", "k1old")], TrustBasis()) is None, "no key known yet"


def test_split_topology_new_key_on_one_server_is_unknown_not_untrusted(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=6)
    sepm1, _sepm2 = estate.write_split_configs(lab, tmp_path / "split", clients_on="SEPM1")
    exporter = scan(sepm1)
    assert {v for _, v in find(exporter.exposition, "sepm_client_server_key_trusted")} == {1.0}
    lab.renew("SEPM1", new_key=True)
    exporter.full_scan()
    assert {v for _, v in find(exporter.exposition, "sepm_client_server_key_trusted")} == {-1.0}
    assert sum(v for k, v in counts(exporter).items() if k[2] == "unknown") == 6
    lab.publish("SEPM1")
    exporter.full_scan()
    assert {v for _, v in find(exporter.exposition, "sepm_client_server_key_trusted")} == {-1.0}
    assert sum(v for k, v in counts(exporter).items() if k[2] == "stale") == 6, "stale outranks unknown"
    assert sum(v for k, v in counts(exporter).items() if k[2] == "untrusted") == 0
    found = findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
    assert not [f for f in found if f.alert == "SEPMClientServerKeyUntrusted"]

    both = scan(lab.config_path)  # an exporter that watches both partners can tell: SEPM2's key is current
    assert {v for _, v in find(both.exposition, "sepm_client_server_key_trusted")} == {1.0}


def test_three_server_list_is_published(tmp_path: Path) -> None:
    """Like the public SEPM 12.1 sample: three servers in two priority blocks; one without an HTTPS port."""
    lab = estate.init(tmp_path / "lab", groups=1, clients=1)
    group = lab.state.groups[0]
    spec = dataclasses.replace(lab.sylink_spec(group), servers=(
        ("Priority1", "10.0.0.111", 8014, None), ("Priority1", "sepm1.example.local", 8014, 443),
        ("Priority2", "10.0.1.111", 8014, 443)))
    estate.atomic_write(lab.sylink_path("SEPM1", group.group_id), render(spec))
    exporter = scan(lab.config_path)
    rows = sorted((labels["address"], labels["priority"], labels.get("https_port", ""), labels["verify_signatures"])
                  for labels, _ in find(exporter.exposition, "sepm_sylink_server_info", server="SEPM1"))
    assert rows == [("10.0.0.111", "Priority1", "", "1"), ("10.0.1.111", "Priority2", "443", "1"),
                    ("sepm1.example.local", "Priority1", "443", "1")]


def test_replica_mismatch_from_the_server_list_says_so(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=1, clients=2)
    group = lab.state.groups[0]
    spec = dataclasses.replace(lab.sylink_spec(group), servers=(("Priority1", "10.0.1.111", 8014, 443),))
    estate.atomic_write(lab.sylink_path("SEPM2", group.group_id), render(spec))
    lab.age(3600)
    exporter = scan(lab.config_path)
    found = [f for f in findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
             if f.alert == "SEPMSyLinkReplicaMismatch"]
    assert len(found) == 1 and "their server lists differ" in found[0].message
    assert "SEPM2 lists 10.0.1.111 (Priority1)" in found[0].message
