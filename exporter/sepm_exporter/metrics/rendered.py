"""The exposition kept as pre-rendered parts, so a change re-renders what changed and a scrape only joins.

Server, group and self families are small (servers x groups) and rendered whole; the client area's
families are kept in blocks of its own chunks (`metrics/clients.py` writes them), so a client's
change costs one block's rendering, and its gzip one block's compression.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sepm_exporter.metrics import clients
from sepm_exporter.metrics.catalog import BY_NAME, FAMILIES
from sepm_exporter.metrics.exposition import encode, header, lines
from sepm_exporter.metrics.family import Sample

_HEADERS = {f.name: encode(header(f)) for f in FAMILIES}
_CLIENT_INDEX = {name: i for i, name in enumerate(clients.NAMES)}
_EMPTY = clients.EMPTY


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
    inside one gzip stream. Only the exporter's writer touches this object; it hands scrapes a frozen
    `Published` after each change.
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
        self._room: set[int] = set()  # blocks before the last that clients have left room in
        self._headers_deflated = {name: _deflate(text) for name, text in _HEADERS.items()}
        self._crc_trail: list[tuple[bytes, int]] = []  # each part of the last publish, and the CRC after it

    def set_family(self, name: str, samples: list[Sample]) -> None:
        rendered = encode(lines(BY_NAME[name], samples))
        if self.whole.get(name) != rendered:
            self.whole[name] = rendered
            self._whole_deflated.pop(name, None)

    def touch_clients(self, names: list[str]) -> None:
        """These clients' series may have changed: their blocks are rendered again by `rebuild`.

        New clients fill the last block, then new ones, a slice at a time (a cold scan adds 100,000).
        """
        block_of = self.block_of
        new = [name for name in names if name not in block_of]
        if len(new) < len(names):
            self.dirty.update({block_of[name] for name in names if name in block_of})
        start = 0
        while start < len(new):
            block = self._block_with_room()
            piece = new[start:start + BLOCK_SIZE - len(self.blocks[block])]
            self.blocks[block].update(dict.fromkeys(piece))
            block_of.update(dict.fromkeys(piece, block))
            self.dirty.add(block)
            start += len(piece)

    def _block_with_room(self) -> int:
        """The last block while it has room, else an earlier one that clients left, else a new one.

        Clients come and go with `clients.series` (a client is shown while it needs action): reusing
        the room they leave keeps the number of blocks bounded by the clients shown, not by history.
        """
        blocks = self.blocks
        if blocks and len(blocks[-1]) < BLOCK_SIZE:
            return len(blocks) - 1
        while self._room:
            block = min(self._room)
            if len(blocks[block]) < BLOCK_SIZE:
                return block
            self._room.discard(block)
        blocks.append({})
        self.block_text.append(_EMPTY)
        self._block_deflated.append(None)
        return len(blocks) - 1

    def drop_client(self, name: str) -> None:
        block = self.block_of.pop(name, None)
        if block is not None:
            del self.blocks[block][name]
            self.dirty.add(block)
            if block != len(self.blocks) - 1:
                self._room.add(block)

    def rebuild(self) -> None:
        """Render the marked blocks; the others keep their bytes and gzip.

        Called when the parts are asked for, so a burst of changes between two scrapes renders each
        block once, and a cold start's first scrape renders everything once.
        """
        for block in self.dirty:
            columns: list[list[bytes]] = [[] for _ in clients.NAMES]
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

    def publish(self) -> Published:
        """Render what changed and freeze the result: the writer calls this, scrapes read what it returns.

        Deflating happens here, in the writer's thread, once per change: a scrape then only joins
        references, whatever the writer is doing meanwhile.
        """
        parts = self.parts()
        # The gzip trailer's CRC runs over the whole body, in order; parts that are the very objects
        # of the last publish keep their running CRC, so a change late in the body (the exporter's
        # own series, last in the catalog) costs a CRC of the tail only.
        trail = self._crc_trail
        crc = 0
        start = 0
        while start < len(parts) and start < len(trail) and parts[start] is trail[start][0]:
            crc = trail[start][1]
            start += 1
        del trail[start:]
        for part in parts[start:]:
            crc = zlib.crc32(part, crc)
            trail.append((part, crc))
        pieces = [_GZIP_HEADER]
        for family in FAMILIES:
            name = family.name
            index = _CLIENT_INDEX.get(name)
            if index is None:
                piece = self._whole_deflated.get(name)
                if piece is None:
                    piece = self._whole_deflated[name] = _deflate(_HEADERS[name] + self.whole.get(name, b""))
                pieces.append(piece)
                continue
            pieces.append(self._headers_deflated[name])
            for block, text in enumerate(self.block_text):
                deflated = self._block_deflated[block]
                if deflated is None:
                    deflated = self._block_deflated[block] = tuple(_deflate(t) if t else b"" for t in text)
                if deflated[index]:
                    pieces.append(deflated[index])
        return Published(tuple(parts), tuple(pieces), crc, sum(len(p) for p in parts))


@dataclass(frozen=True)
class Published:
    """One complete exposition, frozen: swapped in by reference, so readers need no lock."""

    parts: tuple[bytes, ...]
    gzip_body: tuple[bytes, ...]  # gzip header and the parts' deflate pieces, not yet final
    crc: int
    size: int

    def gzip_parts(self, tail: bytes = b"") -> list[bytes]:
        """The parts and `tail` (the process metrics, made per scrape) as one gzip stream.

        One gzip member, not one per part: Go's reader (Prometheus) would read concatenated members,
        but curl --compressed and some browsers stop after the first.
        """
        out = list(self.gzip_body)
        if tail:
            out.append(_deflate(tail))
        out.append(_FINAL_BLOCK + struct.pack("<II", zlib.crc32(tail, self.crc), (self.size + len(tail)) & 0xFFFFFFFF))
        return out
