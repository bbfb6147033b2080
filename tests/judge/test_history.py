"""The state file: corrupt, empty or from a future version is set aside, reported once, and replaced."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import find
from sepm_exporter.judge import history
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config

BAD = {
    "corrupt": (b'{"version": 1, "servers": {"SEPM1": ', "not JSON"),
    "empty": (b"", "empty"),
    "future": (json.dumps({"version": history.STATE_VERSION + 1, "servers": {}, "groups": {}}).encode(), "version"),
    "wrong shape": (json.dumps({"version": history.STATE_VERSION, "groups": {"G": [{"first_seen": 1}]}}).encode(),
                    "shape"),
    "not utf-8": (b"\xff\xfe\x00garbage", "unreadable"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_state_file_is_set_aside_reported_and_replaced(case: str, lab: estate.Lab,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    data, why = BAD[case]
    config = load_config(lab.config_path)
    assert config.state_file is not None
    config.state_file.write_bytes(data)
    caplog.set_level(logging.INFO, logger="sepm_exporter")
    exporter = Exporter(config)
    assert exporter.store.ok is False
    aside = config.state_file.with_name(config.state_file.name + ".bad")
    assert aside.read_bytes() == data, "kept for the operator, byte for byte"
    (record,) = [r for r in caplog.records if r.getMessage() == "file problem"]
    assert record.__dict__["reason"] == "bad_state" and why in record.__dict__["detail"]
    exporter.refresh()  # before the first save: the error is published
    errors = find(exporter.exposition, "sepm_exporter_file_error", reason="bad_state")
    assert [e[0]["file"] for e in errors] == [str(config.state_file)]
    exporter.full_scan()  # the first scan records the keys and writes a good file
    assert history.load(config.state_file)[1] is None
    assert exporter.store.ok is True
    assert find(exporter.exposition, "sepm_exporter_file_error") == []
    assert find(exporter.exposition, "sepm_exporter_file_errors_total", reason="bad_state")[0][1] == 1
    assert find(exporter.exposition, "sepm_exporter_state_file_ok")[0][1] == 1


def test_a_good_state_file_round_trips(tmp_path: Path) -> None:
    kept = history.History()
    history.record_group_version(kept, "A" * 32, "b" * 64, 1700000000.0)
    path = tmp_path / "state.json"
    history.save(path, kept)
    loaded, problem = history.load(path)
    assert problem is None and loaded == kept
    assert history.load(tmp_path / "absent.json") == (history.History(), None), "absent is not an error"


def test_profiles_are_remembered_bounded_and_survive_a_round_trip(tmp_path: Path) -> None:
    kept = history.History()
    assert history.record_profile(kept, "G", 1_000, ["K2", "K1", "K1"]) is True
    assert history.record_profile(kept, "G", 1_000, ["K1", "K2"]) is False  # the same profile again
    assert history.record_profile(kept, "G", 1_000, ["K3"]) is True  # the same time, other keys: replaced
    for when in range(2_000, 2_000 + history.MAX_GROUP_PROFILES + 5):
        history.record_profile(kept, "G", when, ["K1"])
    assert len(kept.profiles["G"]) == history.MAX_GROUP_PROFILES
    assert min(p.time_ms for p in kept.profiles["G"]) == 2_005  # the oldest go first
    path = tmp_path / "state.json"
    history.save(path, kept)
    loaded, problem = history.load(path)
    assert problem is None and loaded.profiles == kept.profiles
    assert history.remembered_profiles(loaded, "G")[2_010] == frozenset({"K1"})
    assert history.remembered_profiles(loaded, "other") == {}


@pytest.mark.parametrize("profiles", [{"G": [{"time_ms": -1, "keys": []}]}, {"G": [{"time_ms": 1, "keys": "K"}]},
                                      {"G": [{"keys": []}]}, {"G": "x"}, ["G"]])
def test_a_bad_profile_entry_makes_the_state_file_unusable_not_a_crash(profiles: object) -> None:
    text = json.dumps({"version": history.STATE_VERSION, "servers": {}, "groups": {}, "profiles": profiles})
    with pytest.raises(history.StateFileError):
        history.decode(text)


def test_a_state_file_without_profiles_still_loads() -> None:
    loaded = history.decode(json.dumps({"version": history.STATE_VERSION, "servers": {}, "groups": {}}))
    assert loaded.profiles == {}
