"""The history store: a bad state file set aside and reported, a good one written in its place, keys recorded once."""

from __future__ import annotations

from pathlib import Path

from sepm_exporter.lab import estate
from sepm_exporter.runtime.history_store import HistoryStore
from sepm_exporter.runtime.problem_log import ProblemLog
from sepm_exporter.settings.config import load_config
from sepm_exporter.sources.scanner import Scanner


def test_an_unusable_state_file_is_set_aside_reported_and_replaced(tmp_path: Path) -> None:
    state = tmp_path / "状態" / "state.json"
    state.parent.mkdir()
    state.write_text("{not json", encoding="utf-8")
    problems = ProblemLog()
    store = HistoryStore(state, ["SEPM1"], problems)
    assert store.ok is False and not state.exists() and state.with_name("state.json.bad").exists()
    (row,) = problems.rows()
    assert row.reason == "bad_state" and row.file == str(state) and "kept as state.json.bad" in row.detail
    store.save()
    assert store.ok is True and state.exists() and problems.rows() == []


def test_keys_are_recorded_once_and_saved_only_when_they_change(lab: estate.Lab, tmp_path: Path) -> None:
    scanner = Scanner(load_config(lab.config_path))
    scanner.scan_all()
    store = HistoryStore(tmp_path / "state.json", ["SEPM1", "SEPM2"], ProblemLog())
    assert store.record_keys(scanner.inventory, 1000.0) is True
    assert store.record_keys(scanner.inventory, 2000.0) is False
    current, previous = store.remembered_keys()
    assert set(current) == {"SEPM1", "SEPM2"} and previous == {}
    lab.renew("SEPM1", new_key=True)
    scanner.scan_all()
    assert store.record_keys(scanner.inventory, 3000.0) is True
    current_after, previous_after = store.remembered_keys()
    assert previous_after == {"SEPM1": current["SEPM1"]} and current_after["SEPM1"] != current["SEPM1"]


def test_a_state_file_that_cannot_be_written_is_said_not_raised(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x", encoding="utf-8")
    store = HistoryStore(blocked / "state.json", [], ProblemLog())
    store.save()
    assert store.ok is False
