"""The client area's one writer: its lines parse back to the facts and verdict they were written from."""

from __future__ import annotations

import zlib

import pytest

from conftest import samples
from sepm_exporter.judge.clients import ClientStatus, ClientVerdict
from sepm_exporter.lab import estate
from sepm_exporter.metrics import clients
from sepm_exporter.metrics.catalog import BY_NAME
from sepm_exporter.metrics.exposition import encode, header
from sepm_exporter.metrics.rendered import Rendered
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config

VERDICTS = [
    None,
    ClientVerdict("ABCDEF0123456789ABCDEF0123456789", True, None, True, ClientStatus.CURRENT),
    ClientVerdict("ABCDEF0123456789ABCDEF0123456789", False, 1700000000.25, False, ClientStatus.UNTRUSTED),
    ClientVerdict("", None, None, None, ClientStatus.UNMATCHED),
    ClientVerdict("ABCDEF0123456789ABCDEF0123456789", False, 1700000000.25, None, ClientStatus.STALE,
                  "ABCDEF0123456789ABCDEF0123456789,BBCDEF0123456789ABCDEF0123456789"),
    ClientVerdict("ABCDEF0123456789ABCDEF0123456789", True, None, None, ClientStatus.UNKNOWN, 'odd"set\\'),
]


@pytest.mark.parametrize("name", ["WS-0001", "端末-東京-01", 'quote"and\\back', "new\nline"])
@pytest.mark.parametrize("verdict", VERDICTS)
def test_client_chunks_parse_back_to_the_facts(lab: estate.Lab, name: str, verdict: ClientVerdict | None) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    client = exporter.scanner.inventory.clients["WS-0001"]
    facts = client.sylink.facts
    assert facts is not None and client.sylink.mtime is not None
    chunks = clients.chunks(name, client, verdict)
    text = b"".join(encode(header(BY_NAME[f])) + chunk for f, chunk in zip(clients.NAMES, chunks, strict=True))
    got = samples(text)  # prometheus_client's own parser: the escaping is right, or this fails
    group = {"group_id": verdict.group_id} if verdict is not None and verdict.group_id else {}
    if verdict is not None and verdict.group_set:
        group["group_set"] = verdict.group_set
    expected: dict[tuple[str, frozenset[tuple[str, str]]], float] = {
        ("sepm_client_sylink_info", frozenset({"client": name, **group, "sha256": facts.sha256,
                                               "canonical_sha256": facts.canonical_sha256}.items())): 1.0,
        ("sepm_client_sylink_modified_timestamp_seconds", frozenset({"client": name}.items())): client.sylink.mtime,
    }
    if verdict is not None and verdict.current is not None:
        expected[("sepm_client_sylink_current", frozenset({"client": name, **group}.items()))] = float(verdict.current)
    if verdict is not None and verdict.stale_since is not None:
        expected[("sepm_client_sylink_stale_since_timestamp_seconds", frozenset({"client": name, **group}.items()))] = (
            verdict.stale_since)
    if verdict is not None:  # 1 trusted, 0 untrusted, -1 unknown: never absent once judged
        trust = -1.0 if verdict.trusted is None else float(verdict.trusted)
        expected[("sepm_client_server_key_trusted", frozenset({"client": name}.items()))] = trust
    assert got == expected


def one_member(stream: bytes) -> bytes:
    """Decompress a gzip stream, failing unless it is exactly one member (what curl --compressed reads)."""
    reader = zlib.decompressobj(31)
    data = reader.decompress(stream)
    assert reader.eof and reader.unused_data == b"", "one gzip member, nothing after it"
    return data


def test_gzip_pieces_are_made_once_per_change(lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from sepm_exporter.metrics import rendered as module
    from sepm_exporter.sources.watcher import unit_of

    monkeypatch.setattr(module, "BLOCK_SIZE", 5)
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    first = exporter.exposition_gzip_parts()
    assert one_member(b"".join(first)) == exporter.exposition, "the pieces join into one stream"
    again = exporter.exposition_gzip_parts()
    assert all(a is b for a, b in zip(first[:-1], again[:-1], strict=True)), "nothing changed: nothing compressed"
    assert one_member(b"".join(exporter.exposition_gzip_parts(b"process_cpu_seconds_total 1.0\n"))) == (
        exporter.exposition + b"process_cpu_seconds_total 1.0\n"), "the scrape's own tail joins the same stream"
    lab.write_variant("crlf", lab.client_path("WS-0007"))
    exporter.reread({u for u in [unit_of(exporter.config, lab.client_path("WS-0007"))] if u is not None})
    rendered: Rendered = exporter.publisher.rendered
    assert rendered.dirty == set(), "rendered and compressed by the writer, never by a scrape"
    second = exporter.exposition_gzip_parts()
    assert one_member(b"".join(second)) == exporter.exposition
    recompressed = {id(p) for p in second[:-1]} - {id(p) for p in first}
    assert 0 < len(recompressed) <= 5 + 10, "the changed block's client families (and the small whole families)"
