"""The scanner's fast paths give what its careful paths give, and its parse cache stays bounded."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from sepm_exporter.lab import estate
from sepm_exporter.sepm import layout
from sepm_exporter.sepm.reasons import ParseError, Reason
from sepm_exporter.settings.config import ClientCollection, load_config
from sepm_exporter.sources.inventory import Inventory
from sepm_exporter.sources.scanner import ParseCache, Scanner


def facts_of(inventory: Inventory) -> dict[str, tuple[object, ...]]:
    """What a scan learnt of each client, minus object identity."""
    return {name: (c.root, c.sylink.path, c.sylink.label, c.sylink.signature, c.sylink.facts, c.sylink.reason)
            for name, c in inventory.clients.items()}


def test_the_cold_scan_fast_path_learns_what_the_careful_path_learns(
        lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh clients are read in one tight loop; forcing every client down the one-file path changes nothing."""
    lab.write_hostile("truncated", lab.client_path("WS-0002"))
    lab.write_hostile("fifo", lab.client_path("WS-0003"))
    lab.client_path("WS-0004").unlink()  # a folder without a file: not a client
    config = load_config(lab.config_path)
    fast = Scanner(config)
    fast.scan_all()

    careful = Scanner(config)
    monkeypatch.setattr(careful, "_adopt_fresh", lambda key, fresh, present, done, total: [
        present.add(c) for c in fresh if careful.scan_collection_client(key, c)])
    careful.scan_all()

    assert facts_of(fast.inventory) == facts_of(careful.inventory)
    assert fast.inventory.clients["WS-0002"].sylink.reason is Reason.TRUNCATED_XML
    assert fast.inventory.clients["WS-0003"].sylink.reason is Reason.NOT_A_FILE
    assert "WS-0004" not in fast.inventory.clients and len(fast.inventory.clients) == 11


def test_a_group_file_that_went_drops_the_group_but_a_dangling_link_is_reported(lab: estate.Lab) -> None:
    group = lab.state.groups[0].group_id
    config = load_config(lab.config_path)
    scanner = Scanner(config)
    scanner.scan_all()
    sylink = lab.sylink_path("SEPM1", group)
    index2 = lab.group_dir("SEPM1", group) / layout.INDEX2_NAME
    assert scanner.inventory.servers["SEPM1"].groups[group].index2 is not None

    index2.unlink()
    scanner.scan_all()
    assert scanner.inventory.servers["SEPM1"].groups[group].index2 is None

    sylink.unlink()
    sylink.symlink_to(sylink.parent / "nowhere.xml")
    scanner.scan_all()
    observed = scanner.inventory.servers["SEPM1"].groups[group].sylink
    assert observed.reason is Reason.VANISHED
    assert observed.label == f"data/outbox/agent/{group}/SyLink.xml"

    sylink.unlink()
    scanner.scan_all()
    assert group not in scanner.inventory.servers["SEPM1"].groups
    assert group in scanner.inventory.servers["SEPM2"].groups


def test_group_paths_are_the_native_ones(lab: estate.Lab) -> None:
    group = lab.state.groups[0].group_id
    scanner = Scanner(load_config(lab.config_path))
    scanner.scan_all()
    observed = scanner.inventory.servers["SEPM1"].groups[group].sylink
    assert observed.path == os.fspath(lab.sylink_path("SEPM1", group))


def sylink_bytes(lab: estate.Lab) -> bytes:
    return lab.client_path("WS-0001").read_bytes()


def test_the_cache_parses_each_content_once(lab: estate.Lab) -> None:
    cache = ParseCache()
    data = sylink_bytes(lab)
    first = cache.parse(data, 1 << 22)
    assert cache.parse(bytes(bytearray(data)), 1 << 22) is first  # equal bytes, another object
    assert (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ParseError) as raised:
        cache.parse(data[: len(data) // 2], 1 << 22)
    with pytest.raises(ParseError) as again:
        cache.parse(data[: len(data) // 2], 1 << 22)
    assert raised.value.reason is again.value.reason is Reason.TRUNCATED_XML
    assert (cache.hits, cache.misses) == (2, 2)


def test_the_cache_is_bounded(lab: estate.Lab) -> None:
    data = sylink_bytes(lab)
    variants = [data + b"\n" * i for i in range(40)]  # 40 distinct contents, each a valid file
    cache = ParseCache(size=8)
    for variant in variants:
        cache.parse(variant, 1 << 22)
    assert len(cache.entries) == 8
    cache.parse(variants[-1], 1 << 22)
    cache.parse(variants[0], 1 << 22)
    assert (cache.hits, cache.misses) == (1, 41)  # the newest stayed, the oldest went


def test_a_client_folder_named_like_another_roots_client_goes_the_careful_path(tmp_path: Path) -> None:
    """Two collections holding the same client name: the second is reported as a duplicate, never published twice."""
    lab = estate.init(tmp_path / "lab", groups=2, clients=3)
    second = tmp_path / "second"
    (second / "WS-0001").mkdir(parents=True)
    (second / "WS-0001" / layout.SYLINK_NAME).write_bytes(sylink_bytes(lab))
    config = load_config(lab.config_path)
    config = replace(config, collections=(*config.collections, ClientCollection(path=second)))
    scanner = Scanner(config)
    scanner.scan_all()
    assert scanner.inventory.clients["WS-0001"].root == str(config.collections[0].path)
    assert scanner.inventory.duplicates["WS-0001"].reason is Reason.DUPLICATE_CLIENT
