"""The compact computer store: every field read back as it was given, whatever the shape."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sepm_exporter.lab.api import ClientRow, computer_json
from sepm_exporter.sepm.computers import ComputerStore
from sepm_exporter.sepm.rest import Computer, decode_computer
from sepm_exporter.sepm.serial import PolicySerial

GROUP = "B89066FBAB697A5B8A573C047E97D85C"
SERIAL = "B890-09/04/2023 12:56:58 775"


def test_lab_items_round_trip() -> None:
    store = ComputerStore()
    items = [computer_json(ClientRow(f"WS-{i}", GROUP, i % 2 == 0, 1_700_000_000_123 + i, SERIAL), "G", "D", "S", "t")
             for i in range(3)]
    for item in items:
        store.add(decode_computer(item))
    rows = list(store)
    assert [r.name for r in rows] == ["WS-0", "WS-1", "WS-2"]
    assert [r.unique_id for r in rows] == [item["uniqueId"] for item in items]
    assert [r.online for r in rows] == [True, False, True]
    assert rows[1].last_update == 1_700_000_000.124
    assert rows[0].serial.parsed == PolicySerial("B890", 1693832218775) and rows[0].serial.reason == ""
    assert rows[2].agent_version == items[2]["agentVersion"]
    assert rows[0].group_id == GROUP
    assert store._serials == [rows[0].serial]  # one serial, parsed once for the three


def test_odd_values_are_kept_as_given() -> None:
    store = ComputerStore()
    store.add(Computer("", None, None, "not a serial", "名前", "abc", ""))
    store.add(Computer(GROUP, True, 0.001, "", "x", GROUP.lower(), "14.2.1"))
    store.add(Computer(GROUP, True, 1.0, "", "y", "0A" * 15 + " 0", "14.2.1"))
    odd, lower, spaced = store
    assert (odd.group_id, odd.online, odd.last_update, odd.unique_id, odd.name) == ("", None, None, "abc", "名前")
    assert odd.serial.parsed is None and odd.serial.reason == "malformed"
    assert lower.unique_id == GROUP.lower() and lower.last_update == 0.001
    assert spaced.unique_id == "0A" * 15 + " 0"
    assert lower.serial.reason == "empty"
    assert store.group_ids() == ["", GROUP]


@given(st.lists(st.tuples(st.text(max_size=12), st.text("0123456789ABCDEFabcdef", max_size=34),
                          st.sampled_from(["", "G1", GROUP]), st.sampled_from([None, True, False]),
                          st.one_of(st.none(), st.integers(1, 2**40).map(lambda ms: ms / 1000.0)),
                          st.text(max_size=30), st.text(max_size=16)), max_size=30))
def test_any_computer_reads_back_unchanged(given_rows: list[tuple[str, str, str, bool | None, float | None, str, str]]) -> None:
    store = ComputerStore()
    for name, unique, group, online, last, serial, agent in given_rows:
        store.add(Computer(group, online, last, serial, name, unique, agent))
    assert len(store) == len(given_rows)
    for row, (name, unique, group, online, last, serial, agent) in zip(store, given_rows, strict=True):
        assert (row.name, row.unique_id, row.group_id, row.online, row.last_update, row.serial.raw, row.agent_version) == (
            name, unique, group, online, last, serial, agent)
