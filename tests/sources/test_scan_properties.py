"""Mutated real files through the whole scan of a small tree: nothing escapes, time per file bounded.

One exporter lives across all examples (the incremental paths are exercised too); each example
damages a client file, a group file, its index2.xml and a server.crt at once, scans, checks that
the exposition still parses and that the damaged files are the only ones in error, then puts the
originals back and checks that no error is left (the key and group history may have moved: a
mutated group file that still parses is a new version, as it would be in production). `bench/hostile.py --fuzz` runs
the same loop longer.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import find, samples
from sepm_exporter.lab import estate, hostile
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm import layout
from sepm_exporter.settings.config import load_config

PER_FILE = 1.0


class Tree:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sepm-scan-prop-"))
        self.lab = estate.init(self.folder / "lab", groups=2, clients=3)
        group = self.lab.state.groups[0].group_id
        self.targets = [
            self.lab.client_path("WS-0001"),
            self.lab.sylink_path("SEPM1", group),
            self.lab.group_dir("SEPM1", group) / layout.INDEX2_NAME,
            self.lab.certificate_path("SEPM2"),
        ]
        self.originals = {path: path.read_bytes() for path in self.targets}
        self.exporter = Exporter(load_config(self.lab.config_path))
        self.exporter.full_scan()

    def restore(self) -> None:
        for path, data in self.originals.items():
            path.write_bytes(data)


@pytest.fixture(scope="module")
def tree() -> Iterator[Tree]:
    made = Tree()
    yield made
    shutil.rmtree(made.folder, ignore_errors=True)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seeds=st.lists(st.integers(min_value=0, max_value=2**32), min_size=4, max_size=4),
       hows=st.lists(st.sampled_from(hostile.MUTATIONS), min_size=4, max_size=4))
def test_mutated_files_through_the_whole_scan(tree: Tree, seeds: list[int], hows: list[str]) -> None:
    for path, seed, how in zip(tree.targets, seeds, hows, strict=True):
        path.write_bytes(hostile.mutate(tree.originals[path], seed, how))
    try:
        started = time.perf_counter()
        tree.exporter.full_scan()  # raises nothing: every failure stays with its file
        spent = time.perf_counter() - started
        assert spent < PER_FILE * len(tree.targets), f"scan took {spent:.2f} s"
        text = tree.exporter.exposition
        samples(text)  # still a valid exposition
        damaged = {"WS-0001", "SEPM1", "SEPM2"}
        for labels, _ in find(text, "sepm_exporter_file_error"):
            assert labels.get("client") in damaged or labels.get("server") in damaged, labels
    finally:
        tree.restore()
    tree.exporter.full_scan()
    assert find(tree.exporter.exposition, "sepm_exporter_file_error") == []
