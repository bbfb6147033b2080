"""Judging every computer the APIs list: a file wins, ambiguity stays two clients, partners count once."""

from __future__ import annotations

from sepm_exporter.judge.api_clients import ApiRecords, judge, old_agent
from sepm_exporter.judge.clients import trust_basis
from sepm_exporter.judge.keysets import CertificateTime
from sepm_exporter.sepm.computers import ComputerStore
from sepm_exporter.sepm.rest import Computer, Group
from sepm_exporter.sepm.serial import format_serial

GROUP = "B89066FBAB697A5B8A573C047E97D85C"
SERIAL = format_serial(GROUP, 3_000_000)
BASIS = trust_basis({"SEPM1": "K1", "SEPM2": "K2"})
CERTS = (CertificateTime("SEPM1", "K1", 1.0), CertificateTime("SEPM2", "K2", 1.0))


def records(server: str, rows: list[tuple[str, str, float]]) -> ApiRecords:
    store = ComputerStore()
    for name, unique, last in rows:
        store.add(Computer(GROUP, True, last, SERIAL, name, unique, "14.3.9210.6000"))
    return ApiRecords(server, store, (Group(GROUP, "G", SERIAL),))


def run(sources: list[ApiRecords], files: dict[str, int] | None = None):
    keys = {(s.server, GROUP): frozenset({"K1", "K2"}) for s in sources}
    return judge(sources, files or {}, keys, {}, {}, CERTS, BASIS, 10_000.0)


def test_partners_listing_one_database_count_each_computer_once() -> None:
    one = records("SEPM1", [("WS-1", "A" * 32, 5.0), ("WS-2", "B" * 32, 5.0)])
    two = records("SEPM2", [("WS-1", "A" * 32, 9.0), ("WS-2", "B" * 32, 1.0)])
    judged = run([one, two])
    assert sorted(judged.names) == ["WS-1", "WS-2"]
    servers = {c.name: c.server for c in judged}
    assert servers == {"WS-1": "SEPM2", "WS-2": "SEPM1"}  # the newer check-in wins
    assert judged.counts == {(GROUP, "current"): 2}


def test_a_file_wins_only_when_the_match_is_unambiguous() -> None:
    judged = run([records("SEPM1", [("WS-1", "A" * 32, 1.0), ("WS-2", "B" * 32, 1.0)])], {"ws-1": 1, "ws-2": 2})
    assert judged.by_file == 1
    assert judged.names == ["WS-2 [" + "B" * 32 + "]"]  # two files fold to ws-2: the record stays its own client


def test_two_records_of_one_name_stay_two_clients() -> None:
    judged = run([records("SEPM1", [("WS-1", "A" * 32, 1.0), ("ws-1", "B" * 32, 1.0)])], {"ws-1": 1})
    assert judged.by_file == 0 and len(judged) == 2 and judged.reasons == {"duplicate_name": 2}
    assert len(set(judged.names)) == 2


def test_one_verdict_per_group_and_serial() -> None:
    judged = run([records("SEPM1", [(f"WS-{i}", f"{i:032X}", 1.0) for i in range(50)])])
    assert len(judged.verdicts) == 1 and len(judged) == 50


def test_kb187099_versions() -> None:
    assert old_agent("14.2.758.0000") and old_agent("14.2.1031.0100") and old_agent("14.2.1057.0103")
    assert not old_agent("14.2.5323.2000") and not old_agent("14.2.5587.2100") and not old_agent("14.3.9210.6000")
    assert not old_agent("") and not old_agent("14.2") and not old_agent("14.2.x.1")
