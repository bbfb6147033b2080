"""Shared fixtures: every tree is built by the project's own lab, never pasted."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import Config, load_config


@pytest.fixture
def lab(tmp_path: Path) -> estate.Lab:
    return estate.init(tmp_path / "lab", groups=3, clients=12)


def samples(exposition: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse with prometheus_client's own parser: proves the text is valid, and gives values."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(exposition.decode("utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = sample.value
    return out


def find(exposition: bytes, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of `name` whose labels include `labels`."""
    return [
        (dict(key[1]), value)
        for key, value in samples(exposition).items()
        if key[0] == name and all(dict(key[1]).get(k, "") == v for k, v in labels.items())
    ]


def one(exposition: bytes, name: str, **labels: str) -> float:
    found = find(exposition, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0][1]


def every_client(config: Config) -> Config:
    """`clients.series: all`: every client has its series, so a test can read any client's lines.

    The default (`problems`: only clients that need action) has its own tests
    (tests/metrics/test_client_series.py, the goldens in tests/metrics/golden/problems/).
    """
    return dataclasses.replace(config, client_series="all")


@pytest.fixture
def scan() -> Callable[[estate.Lab], Exporter]:
    """A fresh scan of a lab in `all` mode, keeping the state file so key history carries over like a restart."""

    def run(lab: estate.Lab) -> Exporter:
        exporter = Exporter(every_client(load_config(lab.config_path)))
        exporter.full_scan()
        return exporter

    return run
