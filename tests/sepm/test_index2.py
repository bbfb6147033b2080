from __future__ import annotations

from sepm_exporter.lab import estate
from sepm_exporter.sepm import layout
from sepm_exporter.sepm.index2 import parse_index2


def test_index2_profile_attributes(lab: estate.Lab) -> None:
    group = lab.state.groups[0]
    facts = parse_index2(lab.group_dir("SEPM1", group.group_id).joinpath(layout.INDEX2_NAME).read_bytes())
    assert facts.serial_number.isdigit() and int(facts.serial_number) >= 2
    assert len(facts.checksum) == 32
    assert facts.last_modified.isdigit()


def test_index2_without_profile_is_empty_not_an_error() -> None:
    assert parse_index2(b"<Index/>").checksum == ""
