"""Parity's pure pieces on lab-made facts: which copy of a group file names the group."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sepm_exporter.judge.parity import GroupCopy, group_names
from sepm_exporter.lab import estate
from sepm_exporter.sepm.sylink import parse_sylink


def copies_of(lab: estate.Lab, group_id: str) -> list[GroupCopy]:
    return [GroupCopy(s.name, parse_sylink(lab.sylink_path(s.name, group_id).read_bytes()), float(i))
            for i, s in enumerate(lab.state.servers)]


def test_groups_are_named_by_the_newest_copy_that_names_them(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=2)
    first, second = (g.group_id for g in lab.state.groups)
    held = copies_of(lab, first)
    assert group_names({first: held}) == {first: lab.state.groups[0].name}

    renamed = replace(held[1].facts, preferred_group="My Company\\東京")
    newer = [held[0], GroupCopy(held[1].server, renamed, held[1].mtime)]
    assert group_names({first: newer}) == {first: "My Company\\東京"}  # SEPM2's copy is the newer one

    unnamed = replace(held[0].facts, preferred_group="")
    assert group_names({second: [GroupCopy("SEPM1", unnamed, 0.0)]}) == {}
