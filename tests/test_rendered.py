"""The fast client renderer writes exactly what the generic exposition code writes."""

from __future__ import annotations

import zlib

import pytest

from sepm_exporter.judge.clients import ClientStatus, ClientVerdict
from sepm_exporter.lab import estate
from sepm_exporter.metrics.catalog import BY_NAME
from sepm_exporter.metrics.exposition import encode, lines
from sepm_exporter.metrics.rendered import Rendered, client_chunks
from sepm_exporter.metrics.samples import CLIENT_FAMILIES, client_samples
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
def test_client_chunks_equal_the_generic_lines(lab: estate.Lab, name: str, verdict: ClientVerdict | None) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    client = exporter.scanner.inventory.clients["WS-0001"]
    expected = client_samples(name, client, verdict)
    generic = tuple(encode(lines(BY_NAME[f], expected[f])) if f in expected else b"" for f in CLIENT_FAMILIES)
    assert client_chunks(name, client, verdict) == generic


def one_member(stream: bytes) -> bytes:
    """Decompress a gzip stream, failing unless it is exactly one member (what curl --compressed reads)."""
    reader = zlib.decompressobj(31)
    data = reader.decompress(stream)
    assert reader.eof and reader.unused_data == b"", "one gzip member, nothing after it"
    return data


def test_gzip_pieces_are_made_once_per_change(lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from sepm_exporter.metrics import rendered as module
    from sepm_exporter.sources.watcher import apply, unit_of

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
    apply(exporter, {u for u in [unit_of(exporter, lab.client_path("WS-0007"))] if u is not None})
    rendered: Rendered = exporter.rendered
    assert rendered.dirty == {rendered.block_of["WS-0007"]}, "marked, rendered at the next scrape"
    second = exporter.exposition_gzip_parts()
    assert one_member(b"".join(second)) == exporter.exposition
    recompressed = {id(p) for p in second[:-1]} - {id(p) for p in first}
    assert 0 < len(recompressed) <= 5 + 10, "the changed block's client families (and the small whole families)"
