"""The group area: what each server's outbox says about a group, read back from the exposition."""

from __future__ import annotations

import time
from collections.abc import Callable

from conftest import find, one
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter


def test_group_names_come_from_the_group_file(lab: estate.Lab, scan: Callable[[estate.Lab], Exporter]) -> None:
    text = scan(lab).exposition
    for group in lab.state.groups:
        for server in ("SEPM1", "SEPM2"):
            found = find(text, "sepm_sylink_group_info", server=server, group_id=group.group_id)
            assert [labels["group"] for labels, _ in found] == [group.name]


def test_index2_last_modified_is_published_in_seconds(lab: estate.Lab, scan: Callable[[estate.Lab], Exporter]) -> None:
    before = time.time()
    lab.publish("SEPM1")
    group = lab.state.groups[0].group_id
    modified = one(scan(lab).exposition, "sepm_group_index_modified_timestamp_seconds", server="SEPM1", group_id=group)
    assert before - 2 <= modified <= time.time() + 2, "LastModifiedTime is milliseconds in the file, seconds here"


def test_an_odd_last_modified_publishes_nothing(lab: estate.Lab, scan: Callable[[estate.Lab], Exporter]) -> None:
    group = lab.state.groups[0].group_id
    index = lab.group_dir("SEPM1", group) / "index2.xml"
    original = index.read_bytes()
    assert b'LastModifiedTime="' in original
    index.write_bytes(original.replace(b'LastModifiedTime="', b'LastModifiedTime="x'))
    assert find(scan(lab).exposition, "sepm_group_index_modified_timestamp_seconds", server="SEPM1", group_id=group) == []
