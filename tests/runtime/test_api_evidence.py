"""Client truth from SEPM's records: an estate with no client collection, the lab's real HTTPS API,
the exporter's own poll, and every surface (counts, untrusted names, the stranded list, the plan)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import samples
from helpers import free_port
from sepm_exporter.assembly import poll_once
from sepm_exporter.lab import api as lab_api
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm.serial import parse_serial
from sepm_exporter.settings.config import load_config

PASSWORD = "lab-api-clients"


@pytest.fixture
def apis(lab: estate.Lab, tmp_path: Path) -> Iterator[tuple[estate.Lab, dict[str, tuple[int, Path]]]]:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD, encoding="utf-8")
    servers = [lab_api.serve(lab.directory, s.name, f"127.0.0.1:{free_port()}", PASSWORD, refresh=0.0)
               for s in lab.state.servers]
    yield lab, {s.sepm_server: (s.port, password_file) for s in servers}
    for server in servers:
        server.shutdown()
        server.server_close()


def exporter_for(lab: estate.Lab, ports: dict[str, tuple[int, Path]], collection: bool = False) -> Exporter:
    config = load_config(lab_api.config_with_api(lab, ports, collection=collection, path=lab.directory / "api.yml"))
    exporter = Exporter(config)
    exporter.full_scan()
    poll_once(exporter)
    return exporter


def incident(lab: estate.Lab) -> set[str]:
    """Both servers renewed with a new key, the outbox rewritten and replicated, half the clients pulled:
    the names of those still on the old profile."""
    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    pulled = set(lab.pull(0.5))
    return set(lab.state.clients) - pulled


def untrusted(exporter: Exporter) -> set[str]:
    return {s.client for s in exporter.report().stranded if s.status == "untrusted"}


def test_every_computer_counted_and_exactly_the_old_profile_untrusted(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    lab, ports = apis
    old = incident(lab)
    assert 0 < len(old) < len(lab.state.clients)
    exporter = exporter_for(lab, ports)
    report = exporter.report()
    assert sum(report.counts.values()) == len(lab.state.clients)  # each computer once, though both APIs list it
    assert untrusted(exporter) == old
    assert {s.evidence for s in report.stranded} == {"api"}
    assert {s.rule for s in report.stranded} == {"older_than_certificate"}  # no history: rule 3
    found = samples(exporter.exposition)
    api_untrusted = sum(v for (name, labels), v in found.items() if name == "sepm_group_clients"
                        and ("evidence", "api") in labels and ("state", "untrusted") in labels)
    api_current = sum(v for (name, labels), v in found.items() if name == "sepm_group_clients"
                      and ("evidence", "api") in labels and ("state", "current") in labels)
    assert (api_untrusted, api_current) == (len(old), len(lab.state.clients) - len(old))
    named = {dict(labels)["client"] for (name, labels), v in found.items() if name == "sepm_api_client_key_trusted" and v == 0}
    assert named == old
    rows = [r for r in report.rows if r.alert == "SEPMClientServerKeyUntrusted"]
    assert {c for r in rows for c in r.clients} == old


def test_policy_timestamp_equals_the_group_policy_time_to_the_ms(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    lab, ports = apis
    lab.publish("SEPM1")
    exporter = exporter_for(lab, ports)
    found = samples(exporter.exposition)
    view = lab_api.Estate(lab.directory, "SEPM1").view(0.0)
    for group in view.groups:
        value = found[("sepm_api_group_policy_timestamp_seconds", frozenset({("server", "SEPM1"), ("group_id", group["id"])}))]
        assert round(value * 1000) == group["policyDate"] == parse_serial(group["policySerialNumber"]).time_ms


def test_a_file_wins_over_the_record_and_each_client_counts_once(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    lab, ports = apis
    old = incident(lab)
    exporter = exporter_for(lab, ports, collection=True)
    report = exporter.report()
    assert sum(report.counts.values()) == len(lab.state.clients)
    assert untrusted(exporter) == old
    assert {s.evidence for s in report.stranded} == {"file"}
    found = samples(exporter.exposition)
    assert found[("sepm_api_clients_judged_by_file", frozenset())] == len(lab.state.clients)


def test_remembered_profiles_survive_a_restart(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    """Rule 2: the exporter saw each group's profile before the renewal (two polls agreeing), kept it in the
    state file, and after a restart judges the old-profile computers by that profile's keys."""
    lab, ports = apis
    before = exporter_for(lab, ports)
    assert before.history.profiles == {}  # one poll, reported once per server: not yet two sightings
    poll_once(before)  # a second poll that agrees: the profiles are remembered
    state = json.loads(Path(before.config.state_file).read_text(encoding="utf-8"))  # type: ignore[arg-type]
    assert len(state["profiles"]) == len(lab.state.groups)
    old = incident(lab)
    after = exporter_for(lab, ports)
    assert untrusted(after) == old
    assert {s.rule for s in after.report().stranded} == {"remembered"}


def test_check_stranded_json_names_the_same_set(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from sepm_exporter.cli import main

    lab, ports = apis
    old = incident(lab)
    config = lab_api.config_with_api(lab, ports, collection=False, path=lab.directory / "api.yml")
    assert main(["check", "--config", str(config), "--stranded", "--format", "json"]) in (0, 2)
    listed = json.loads(capsys.readouterr().out)
    assert {r["client"] for r in listed if r["status"] == "untrusted"} == old
    assert all(r["evidence"] == "api" and r["rule"] for r in listed)


def odd_records(lab: estate.Lab) -> list[dict[str, object]]:
    """Records SEPM may hold that no lab client stands behind, each a kind of bad input."""
    group = lab.state.groups[0].group_id
    base = lab_api.computer_json(lab_api.ClientRow("x", group, True, 1_700_000_000_000, ""), "G", "D", "SEPM1", "tokyo")

    def record(name: str, unique: str, **fields: object) -> dict[str, object]:
        return {**base, "computerName": name, "uniqueId": unique, **fields}

    return [
        record("ODD-SERIAL", "A" * 32, profileSerialNo="v14-whatever"),
        record("ODD-DATE", "B" * 32, profileSerialNo=f"{group[:4]}-02/30/2020 00:00:00 000"),
        record("NO-GROUP", "C" * 32, group=None, profileSerialNo=f"{group[:4]}-01/01/2018 00:00:00 000"),
        record("FUTURE", "D" * 32, profileSerialNo=f"{group[:4]}-01/01/2099 00:00:00 000"),
        record("GHOST-GROUP", "E" * 32, group={"id": "F" * 32, "name": "gone"},
               profileSerialNo=f"{'F' * 4}-01/01/2026 00:00:00 000"),
        record("WS-0001", "1" * 32, profileSerialNo=""),  # a second record of a lab client's name (re-imaged)
    ]


def test_bad_records_are_unknown_with_a_reason_never_a_critical(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    lab, ports = apis
    for server in ports:
        lab_api.add_computers(lab.directory, server, odd_records(lab))
    exporter = exporter_for(lab, ports)
    found = samples(exporter.exposition)
    reasons = {dict(labels)["reason"]: v for (name, labels), v in found.items() if name == "sepm_api_client_unknown"}
    assert reasons["serial_malformed"] == 1 and reasons["serial_bad_date"] == 1 and reasons["no_group"] == 1
    assert reasons["profile_in_future"] == 1 and reasons["serial_empty"] == 1 and reasons["group_unknown"] == 1
    assert reasons["duplicate_name"] == 2  # WS-0001 twice: two clients, neither merged
    report = exporter.report()
    assert sum(report.counts.values()) == len(lab.state.clients) + 6  # every record a client, once
    assert untrusted(exporter) == set()
    assert not [f for f in report.findings if f.alert == "SEPMClientServerKeyUntrusted"]
    names = {s.client for s in report.stranded}
    assert {"ODD-SERIAL", "NO-GROUP", "FUTURE"} <= names and sum(n.startswith("WS-0001 [") for n in names) == 1
    assert found[("sepm_api_up", frozenset({("server", "SEPM1")}))] == 1.0

    # the incident on top: the odd records stay unknown, the real ones are judged as ever
    old = incident(lab)
    after = exporter_for(lab, ports)
    assert {name.split(" [")[0] for name in untrusted(after)} == old  # WS-0001's own record is "WS-0001 [its id]"
    assert reasons["group_unknown"] == 1 and "GHOST-GROUP" not in untrusted(after)


def test_the_incident_replay_on_an_estate_with_no_client_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lab replay --api-only`: from SEPM2's renewal on, every step pages every group from SEPM's records."""
    from sepm_exporter.cli import main

    assert main(["lab", "replay", str(tmp_path / "lab"), "--api-only"]) == 0
    steps = capsys.readouterr().out.split("== step ")[1:]
    groups = len(estate.Lab(tmp_path / "lab").state.groups)
    api_pages = [step.count("(evidence: api, SEPM's records)") for step in steps]
    assert api_pages == [0, groups, groups, groups, groups]


def test_the_renewal_plan_counts_api_clients_and_their_agent_versions(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    lab, ports = apis
    exporter = exporter_for(lab, ports)
    plan = exporter.report().plan
    assert plan is not None
    total = len(lab.state.clients)
    by_server = {p.what_if.servers[0]: p.what_if.stranded_count for p in plan.servers}
    assert by_server == {"SEPM1": 0, "SEPM2": 0}  # each computer's profile embeds both keys: one at a time is safe
    assert plan.everything.stranded_count == total  # both at once strands every computer SEPM lists
    assert {p.rollout.total for p in plan.servers} == {total}
    old_agents = sum(lab_api.old_agent_name(name) for name in lab.state.clients)
    assert 0 < old_agents < total
    assert f"{old_agents} of the {total} computers SEPM lists run those versions" in plan.caveat


def test_the_landing_page_names_api_clients_with_their_evidence(apis: tuple[estate.Lab, dict[str, tuple[int, Path]]]) -> None:
    from sepm_exporter.serving import landing

    lab, ports = apis
    old = incident(lab)
    exporter = exporter_for(lab, ports)
    html = landing.page(exporter, "/metrics").decode("utf-8")
    for name in old:
        assert f'{name} <small class="evidence">api</small>' in html
    group = lab.state.clients[sorted(old)[0]]
    status, listed = landing.clients_page(exporter, "/metrics", f"subject=group+{group}")
    assert status == 200 and "<th>evidence</th>" in listed.decode("utf-8")
    assert f"<td>{sorted(old)[0]}</td><td>api</td>" in listed.decode("utf-8")
