"""The incremental paths against the truth: after every step, a fresh full scan must publish the same facts.

Each step is applied to one long-lived exporter twice over: through the event path (only the units
the changed paths map to are re-read) and through the reconciliation path (a stat pass), and the
result is compared with a brand-new exporter that scans everything from nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import every_client, samples
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config
from sepm_exporter.sources.watcher import unit_of

Step = Callable[[estate.Lab], list[Path]]


def facts(exporter: Exporter) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Everything but the exporter's own bookkeeping, which legitimately differs between runs."""
    return {k: v for k, v in samples(exporter.exposition).items()
            if not k[0].startswith("sepm_exporter_") or k[0] in ("sepm_exporter_file_error", "sepm_exporter_root_up")}


def rename_client(lab: estate.Lab) -> list[Path]:
    old = lab.clients_root / "WS-0002"
    new = lab.clients_root / "WS-0002-renamed"
    old.rename(new)
    return [old, new / "SyLink.xml"]


def delete_client(lab: estate.Lab) -> list[Path]:
    folder = lab.clients_root / "WS-0005"
    shutil.rmtree(folder)
    return [folder / "SyLink.xml"]


def new_group(lab: estate.Lab) -> list[Path]:
    group = lab.add_group()
    paths = [lab.sylink_path(s.name, group) for s in lab.state.servers]
    lab.pull(1.0, group_id=group)
    return paths


def drop_group(lab: estate.Lab) -> list[Path]:
    group = lab.state.groups[-1].group_id
    paths = [lab.sylink_path(s.name, group) for s in lab.state.servers]
    lab.remove_group(group)
    return paths


def new_key(lab: estate.Lab) -> list[Path]:
    lab.renew("SEPM1", new_key=True)
    return [lab.certificate_path("SEPM1"), *lab.publish("SEPM1")]


def all_clients(lab: estate.Lab) -> list[Path]:
    return [lab.client_path(name) for name in lab.state.clients if lab.client_path(name).exists()]


STEPS: list[tuple[str, Step]] = [
    ("publish on one partner", lambda lab: lab.publish("SEPM1")),
    ("half the clients pull", lambda lab: (lab.pull(0.5), all_clients(lab))[1]),
    ("a client is renamed", rename_client),
    ("a client is deleted", delete_client),
    ("a group appears", new_group),
    ("drift on one partner", lambda lab: [lab.drift("SEPM2", lab.state.groups[0].group_id, heartbeat_seconds=600)]),
    ("a client is damaged", lambda lab: (lab.write_hostile("truncated", lab.client_path("WS-0003")),
                                         [lab.client_path("WS-0003")])[1]),
    ("the server key changes", new_key),
    ("replication", lambda lab: (lab.replicate("SEPM1", "SEPM2"),
                                 [lab.sylink_path("SEPM2", g.group_id) for g in lab.state.groups])[1]),
    ("a group vanishes", drop_group),
    ("everyone pulls", lambda lab: (lab.pull(1.0), all_clients(lab))[1]),
]


@pytest.mark.parametrize("path_kind", ["events", "reconcile"])
def test_every_step_ends_where_a_fresh_scan_does(path_kind: str, tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=4, clients=24)
    running = Exporter(load_config(lab.config_path))
    running.full_scan()
    for title, step in STEPS:
        changed = step(lab)
        if path_kind == "events":
            units = {u for u in (unit_of(running.config, p) for p in changed) if u is not None}
            assert units, title
            running.reread(units)
        else:
            running.full_scan()
        fresh = Exporter(load_config(lab.config_path))
        fresh.full_scan()
        assert facts(running) == facts(fresh), f"after: {title}"


def test_a_client_change_re_renders_its_block_alone(lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from sepm_exporter.metrics import rendered

    monkeypatch.setattr(rendered, "BLOCK_SIZE", 4)  # 12 clients: three blocks
    running = Exporter(every_client(load_config(lab.config_path)))
    running.full_scan()
    assert len(running.publisher.rendered.blocks) == 3
    before = list(running.publisher.rendered.block_text)
    lab.write_variant("crlf", lab.client_path("WS-0006"))
    running.reread({u for u in [unit_of(running.config, lab.client_path("WS-0006"))] if u is not None})
    assert running.publisher.rendered.dirty == set(), "the writer rendered it: scrapes only join"
    after = running.publisher.rendered.block_text
    changed = [i for i, text in enumerate(after) if text is not before[i]]
    assert changed == [running.publisher.rendered.block_of["WS-0006"]]


def test_a_client_moving_between_healthy_and_problem_adds_and_removes_its_series_alone(
        lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """`problems` mode: a healthy client has no series; turning stale gives it its lines, in one block,
    and turning current again takes them away, without re-rendering any other client."""
    from sepm_exporter.metrics import rendered

    monkeypatch.setattr(rendered, "BLOCK_SIZE", 4)
    running = Exporter(load_config(lab.config_path))
    running.full_scan()
    assert running.publisher.rendered.blocks == [] and b"sepm_client_sylink_info{" not in running.exposition
    lab.renew("SEPM1", new_key=False)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    running.full_scan()  # every client now holds an older file: stale, each with its lines
    assert len(running.publisher.rendered.block_of) == 12 and len(running.publisher.rendered.blocks) == 3
    before = list(running.publisher.rendered.block_text)
    group = lab.state.clients["WS-0006"]
    pulled = set(lab.pull(1.0, group_id=group))  # that group's clients fetch the new file: current again
    held = {running.publisher.rendered.block_of[n] for n in pulled}
    running.reread({u for u in (unit_of(running.config, lab.client_path(n)) for n in pulled) if u is not None})
    assert not pulled & set(running.publisher.rendered.block_of), "current again: no series"
    text = running.exposition.decode()
    assert all(f'client="{n}"' not in text for n in pulled)
    assert all(f'sepm_client_sylink_info{{client="{n}"' in text for n in set(lab.state.clients) - pulled)
    changed = {i for i, t in enumerate(running.publisher.rendered.block_text) if t is not before[i]}
    assert changed == held, "only the blocks that held the pulled clients are rendered again"


def test_parsing_runs_once_per_distinct_content(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=3, clients=60)
    running = Exporter(load_config(lab.config_path))
    running.full_scan()
    cache = running.scanner.parse_cache
    assert cache.misses <= 3 * 2 + 1, "3 groups on 2 servers; 60 clients hold copies of them"
    assert cache.hits >= 60 - 1
