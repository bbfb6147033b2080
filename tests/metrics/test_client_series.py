"""Which clients get series (clients.series), within clients.series_limit; counted on real expositions."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from sepm_exporter.judge.clients import ClientStatus, ClientVerdict
from sepm_exporter.lab import estate
from sepm_exporter.metrics.client_series import Mode, Selection, needs_action, series_count
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config

CURRENT = ClientVerdict("G1", True, None, True, ClientStatus.CURRENT)
STALE = ClientVerdict("G1", False, 100.0, True, ClientStatus.STALE)
UNTRUSTED = ClientVerdict("G1", False, 100.0, False, ClientStatus.UNTRUSTED)
UNKNOWN = ClientVerdict("G1", True, None, None, ClientStatus.UNKNOWN)
UNMATCHED = ClientVerdict("", None, None, True, ClientStatus.UNMATCHED)


def test_the_predicate_is_on_the_verdict() -> None:
    assert [needs_action(v) for v in (CURRENT, STALE, UNTRUSTED, UNKNOWN, UNMATCHED, None)] == [
        False, True, True, True, True, False]
    assert [series_count(Mode.PROBLEMS, v) for v in (CURRENT, STALE, UNTRUSTED, UNKNOWN, UNMATCHED)] == [0, 2, 2, 2, 1]
    assert [series_count(Mode.ALL, v) for v in (CURRENT, STALE, UNTRUSTED, UNMATCHED)] == [4, 5, 5, 3]
    assert series_count(Mode.NONE, UNTRUSTED) == 0


def test_problems_mode_shows_only_clients_that_need_action_and_hides_them_when_healed() -> None:
    selection = Selection(Mode.PROBLEMS, 100)
    assert selection.judge(["a", "b"], CURRENT) == []
    assert selection.judge(["a"], UNTRUSTED) == ["a"] and selection.used == 2
    assert selection.judge(["a"], CURRENT) == [] and selection.take_moved() == ([], ["a"])
    assert selection.used == 0 and not selection.is_shown("a")


def test_past_the_limit_whole_clients_wait_and_are_counted_then_take_the_room_others_leave() -> None:
    selection = Selection(Mode.PROBLEMS, 5)  # two stranded clients fit (2 series each), a third does not
    assert selection.judge(["a", "b", "c"], UNTRUSTED) == ["a", "b"]
    assert (selection.used, selection.dropped) == (4, 2)
    selection.take_moved()
    selection.judge(["a"], CURRENT)  # a pulls the new file: c takes its room
    assert selection.take_moved() == (["c"], ["a"])
    assert (selection.used, selection.dropped) == (4, 0) and selection.is_shown("c")
    selection.forget(["b", "c"])
    assert (selection.used, selection.dropped) == (0, 0)


def test_all_mode_gives_problems_the_room_of_healthy_clients() -> None:
    selection = Selection(Mode.ALL, 8)
    assert selection.judge(["h1", "h2"], CURRENT) == ["h1", "h2"]  # 4 series each: full
    assert selection.judge(["p"], STALE) == ["p"]  # 5 series: both healthy clients make room
    assert selection.take_moved() == ([], ["h2", "h1"])
    assert (selection.used, selection.dropped) == (5, 8)
    selection.judge(["p"], CURRENT)  # p heals: it is healthy now, and the first healthy one waiting comes back first
    shown, hidden = selection.take_moved()
    assert selection.used <= 8 and selection.dropped + selection.used == 12
    assert shown == ["h2"] and hidden == []


def test_none_mode_shows_nobody() -> None:
    selection = Selection(Mode.NONE, 100)
    assert selection.judge(["a"], UNTRUSTED) == [] and selection.used == selection.dropped == 0


def series(exposition: bytes) -> list[bytes]:
    return [line for line in exposition.splitlines() if line and not line.startswith(b"#")]


def named(exposition: bytes) -> set[str]:
    return {m.decode() for m in re.findall(rb'^sepm_client_[a-z_]+\{client="([^"]*)"', exposition, re.M)}


def scanned(lab: estate.Lab, **settings: object) -> Exporter:
    exporter = Exporter(dataclasses.replace(load_config(lab.config_path), **settings))  # type: ignore[arg-type]
    exporter.full_scan()
    return exporter


def strand_half(lab: estate.Lab) -> set[str]:
    """A new-key renewal of both partners, published and replicated, and half the clients pull."""
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    return set(lab.state.clients) - set(lab.pull(0.5))


def test_the_limit_on_a_real_exposition_keeps_whole_clients_and_counts_the_rest(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=40)
    stranded = strand_half(lab)
    exporter = scanned(lab, client_series_limit=15)  # seven stranded clients (2 series each) fit
    text = exporter.exposition
    client_lines = [line for line in series(text) if line.startswith(b"sepm_client_")]
    assert len(client_lines) == 14 and len(named(text)) == 7 and named(text) <= stranded
    assert b"sepm_exporter_client_series 14.0" in text
    assert f"sepm_exporter_client_series_dropped {2.0 * (len(stranded) - 7)}".encode() in text
    report = exporter.report()
    assert {row.client for row in report.stranded} == stranded, "check --stranded still lists every client"
    untrusted = [f for f in report.findings if f.alert == "SEPMClientServerKeyUntrusted"]
    assert {c for f in untrusted for c in f.clients} == stranded, "the page names every one"
    counted = sum(float(v) for v in re.findall(rb'^sepm_group_clients\{[^}]*state="untrusted"[^}]*\} (\S+)$', text, re.M))
    assert counted == len(stranded), "the alert counts every one"


@pytest.mark.parametrize("mode, healthy, stranded_each", [("problems", 0, 2), ("all", 4, 5), ("none", 0, 0)])
def test_series_per_client_in_each_mode(tmp_path: Path, mode: str, healthy: int, stranded_each: int) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=20)
    base = len(series(scanned(lab, client_series="none").exposition))
    assert len(series(scanned(lab, client_series=mode).exposition)) == base + 20 * healthy
    stranded = strand_half(lab)
    text = scanned(lab, client_series=mode).exposition
    after = len(series(scanned(lab, client_series="none").exposition))
    assert len(series(text)) == after + len(stranded) * stranded_each + (20 - len(stranded)) * healthy
    assert named(text) == (set() if mode == "none" else stranded if mode == "problems" else set(lab.state.clients))


def test_twenty_thousand_clients_fit_a_prometheus_healthy_and_mid_incident(tmp_path: Path) -> None:
    """The issue's estate (20,000 clients, one group per 1,000, a replicated pair), default settings:
    healthy at most 3,000 series; after a new-key renewal with half the clients pulled, at most 25,000
    and every stranded client named in some series. Counted on the exposition's lines."""
    lab = estate.init(tmp_path / "lab", groups=20, clients=20_000)
    healthy = scanned(lab).exposition
    assert len(series(healthy)) <= 3_000 and named(healthy) == set()
    stranded = strand_half(lab)
    assert len(stranded) == 10_000
    text = scanned(lab).exposition
    assert len(series(text)) <= 25_000
    assert named(text) == stranded
    assert b"sepm_exporter_client_series_dropped 0.0" in text


@pytest.mark.parametrize("mode", [Mode.PROBLEMS, Mode.ALL])
def test_the_books_balance_through_any_sequence_of_changes(mode: Mode) -> None:
    """Random verdict changes and departures: what is shown is what the renderer was told, within the ceiling."""
    import random

    rng = random.Random(24)
    selection = Selection(mode, 37)
    verdicts = (CURRENT, STALE, UNTRUSTED, UNKNOWN, UNMATCHED)
    rendered: set[str] = set()  # what a renderer following judge/forget/take_moved would hold
    for _ in range(3000):
        names = rng.sample([f"c{i}" for i in range(40)], rng.randint(1, 6))
        if rng.random() < 0.15:
            selection.forget(names)
            rendered -= set(names)
        else:
            verdict = rng.choice(verdicts)
            shown = selection.judge(names, verdict)
            rendered -= set(names) - set(shown)
            rendered |= set(shown)
        up, down = selection.take_moved()
        rendered = (rendered | set(up)) - set(down)
        shown_now = {n for level in selection.shown for n in level}
        assert rendered == shown_now
        assert selection.used == sum(c for level in selection.shown for c in level.values()) <= 37
        assert selection.dropped == sum(c for level in selection.waiting for c in level.values())
        if selection.waiting[0]:  # a problem waits only when no healthy client holds room it could take
            assert not selection.shown[1]


def test_a_hundred_thousand_healthy_clients_cost_a_few_thousand_series(tmp_path: Path) -> None:
    """The issue's large estate (100,000 clients, 100 groups on a pair), healthy, default settings: at most 5,000."""
    lab = estate.init(tmp_path / "lab", groups=100, clients=100_000)
    text = scanned(lab).exposition
    assert len(series(text)) <= 5_000 and named(text) == set()
    assert b'state="current",evidence="file"} 1000.0' in text  # every client counted, in its group
