"""The exposition kept as pre-rendered parts, so a change re-renders what changed and a scrape only joins.

Server and self families are small (servers x groups) and rendered whole; client families are kept
in blocks, so a client's change costs one block's rendering, and its gzip one block's compression.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable

from sepm_exporter.judge.clients import ClientVerdict
from sepm_exporter.metrics.catalog import BY_NAME, FAMILIES
from sepm_exporter.metrics.exposition import encode, escape_label, format_value, header, lines
from sepm_exporter.metrics.family import Sample
from sepm_exporter.metrics.samples import CLIENT_FAMILIES, TRUST_SAMPLE
from sepm_exporter.sources.inventory import ClientState

_HEADERS = {f.name: encode(header(f)) for f in FAMILIES}
_CLIENT_INDEX = {name: i for i, name in enumerate(CLIENT_FAMILIES)}
_EMPTY = (b"",) * len(CLIENT_FAMILIES)
TRUST_VALUE = {k: format_value(v) for k, v in TRUST_SAMPLE.items()}


def _text(value: str) -> str:
    return escape_label(value) if ("\\" in value or '"' in value or "\n" in value) else value


_Shared = tuple[str, str, str, str, str]


@functools.lru_cache(maxsize=4096)
def _shared(sha256: str, canonical: str, verdict: ClientVerdict | None) -> _Shared:
    """The parts of a client's lines that depend on its file and verdict, not its name: shared by many."""
    group = f',group_id="{_text(verdict.group_id)}"' if verdict is not None and verdict.group_id else ""
    group_set = f',group_set="{_text(verdict.group_set)}"' if verdict is not None and verdict.group_set else ""
    info = f'{group},sha256="{sha256}",canonical_sha256="{canonical}"{group_set}}} 1.0\n'
    current = stale = trusted = ""
    if verdict is not None:
        if verdict.current is not None:
            current = f"{group}{group_set}}} {'1.0' if verdict.current else '0.0'}\n"
        if verdict.stale_since is not None:
            stale = f"{group}{group_set}}} {format_value(verdict.stale_since)}\n"
        trusted = f"}} {TRUST_VALUE[verdict.trusted]}\n"
    return info, current, stale, trusted, group


def client_chunks(name: str, client: ClientState, verdict: ClientVerdict | None) -> tuple[bytes, ...]:
    """One client's lines, written out directly: the same text as `lines(client_samples(...))`, faster.

    A cold scan renders 100,000 of these; the generic path spends most of its time in zip and joins,
    and most of each line is shared by every client holding the same file with the same verdict.
    `tests/test_rendered.py` holds the two equal for ordinary and hostile names.
    """
    facts = client.sylink.facts
    mtime = client.sylink.mtime
    if facts is None or mtime is None:
        return _EMPTY
    info, current, stale, trusted, _ = _shared(facts.sha256, facts.canonical_sha256, verdict)
    who = f'{{client="{_text(name)}"'
    return (
        f"sepm_client_sylink_info{who}{info}".encode("utf-8", "replace"),
        f"sepm_client_sylink_modified_timestamp_seconds{who}}} {format_value(mtime)}\n".encode("utf-8", "replace"),
        f"sepm_client_sylink_current{who}{current}".encode("utf-8", "replace") if current else b"",
        f"sepm_client_sylink_stale_since_timestamp_seconds{who}{stale}".encode("utf-8", "replace") if stale else b"",
        f"sepm_client_server_key_trusted{who}{trusted}".encode("utf-8", "replace") if trusted else b"",
    )


BLOCK_SIZE = 1024


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, OS unknown
_FINAL_BLOCK = b"\x03\x00"  # an empty, final fixed-Huffman deflate block


def _deflate(data: bytes) -> bytes:
    """Raw deflate blocks ending on a byte boundary and not final: pieces made apart join into one stream.

    Each piece has its own dictionary, so no back-reference crosses into another; that is what lets
    a changed block be compressed again alone.
    """
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


class Rendered:
    """The exposition in parts, each compressed at most once per change.

    Client series live in blocks of up to 1,024 clients: a change marks the client's block, the
    block is rendered again when the parts are next asked for (about a millisecond), and that scrape
    compresses that block alone. A scrape sends the parts as they are, or their deflate pieces
    inside one gzip stream. Writers hold the exporter's lock; `parts` and `gzip_parts` too, for the
    moment it takes to collect references (and, after a change, to checksum the body once).
    """

    def __init__(self, render: Callable[[str], tuple[bytes, ...]]) -> None:
        self.render = render  # a client's chunks, from the current inventory and verdicts
        self.whole: dict[str, bytes] = {}
        self._whole_deflated: dict[str, bytes] = {}
        self.block_of: dict[str, int] = {}
        self.blocks: list[dict[str, None]] = []  # block -> its clients, in order
        self.block_text: list[tuple[bytes, ...]] = []  # block -> one joined chunk per client family
        self._block_deflated: list[tuple[bytes, ...] | None] = []
        self.dirty: set[int] = set()
        self._headers_deflated = {name: _deflate(text) for name, text in _HEADERS.items()}
        self._body_crc: tuple[int, int] | None = None  # CRC-32 and length of the body, for the gzip trailer

    def set_family(self, name: str, samples: list[Sample]) -> None:
        rendered = encode(lines(BY_NAME[name], samples))
        if self.whole.get(name) != rendered:
            self.whole[name] = rendered
            self._whole_deflated.pop(name, None)
            self._body_crc = None

    def touch_client(self, name: str) -> None:
        """The client's series may have changed: its block is rendered again by `rebuild`."""
        block = self.block_of.get(name)
        if block is None:
            if not self.blocks or len(self.blocks[-1]) >= BLOCK_SIZE:
                self.blocks.append({})
                self.block_text.append(_EMPTY)
                self._block_deflated.append(None)
            block = len(self.blocks) - 1
            self.blocks[block][name] = None
            self.block_of[name] = block
        self.dirty.add(block)

    def drop_client(self, name: str) -> None:
        block = self.block_of.pop(name, None)
        if block is not None:
            del self.blocks[block][name]
            self.dirty.add(block)

    def rebuild(self) -> None:
        """Render the marked blocks; the others keep their bytes and gzip.

        Called when the parts are asked for, so a burst of changes between two scrapes renders each
        block once, and a cold start's first scrape renders everything once.
        """
        if self.dirty:
            self._body_crc = None
        for block in self.dirty:
            columns: list[list[bytes]] = [[] for _ in CLIENT_FAMILIES]
            for name in self.blocks[block]:
                for column, chunk in zip(columns, self.render(name), strict=True):
                    if chunk:
                        column.append(chunk)
            self.block_text[block] = tuple(b"".join(column) for column in columns)
            self._block_deflated[block] = None
        self.dirty.clear()

    def parts(self) -> list[bytes]:
        """Catalog order: HELP/TYPE, then the family's lines (for client families, every block's)."""
        self.rebuild()
        out: list[bytes] = []
        for family in FAMILIES:
            out.append(_HEADERS[family.name])
            index = _CLIENT_INDEX.get(family.name)
            if index is None:
                out.append(self.whole.get(family.name, b""))
            else:
                out.extend(text[index] for text in self.block_text if text[index])
        return out

    def gzip_parts(self, tail: bytes = b"") -> list[bytes]:
        """The same, and `tail` after it, as one gzip stream; only parts changed since the last scrape
        are compressed now.

        One gzip member, not one per part: Go's reader (Prometheus) would read concatenated members,
        but curl --compressed and some browsers stop after the first.
        """
        parts = self.parts()
        if self._body_crc is None:
            crc = 0
            for part in parts:
                crc = zlib.crc32(part, crc)
            self._body_crc = (crc, sum(len(p) for p in parts))
        crc, size = self._body_crc
        out = [_GZIP_HEADER]
        for family in FAMILIES:
            name = family.name
            index = _CLIENT_INDEX.get(name)
            if index is None:
                piece = self._whole_deflated.get(name)
                if piece is None:
                    piece = self._whole_deflated[name] = _deflate(_HEADERS[name] + self.whole.get(name, b""))
                out.append(piece)
                continue
            out.append(self._headers_deflated[name])
            for block, text in enumerate(self.block_text):
                pieces = self._block_deflated[block]
                if pieces is None:
                    pieces = self._block_deflated[block] = tuple(_deflate(t) if t else b"" for t in text)
                if pieces[index]:
                    out.append(pieces[index])
        if tail:
            out.append(_deflate(tail))
        out.append(_FINAL_BLOCK + struct.pack("<II", zlib.crc32(tail, crc), (size + len(tail)) & 0xFFFFFFFF))
        return out
