"""The exposition kept as pre-rendered parts, so a change re-renders what changed and a scrape only joins.

Server and self families are small (servers x groups) and rendered whole; client families hold one
chunk per client, so a client's change costs one client's rendering. The joined body and its gzip
form are made on the first scrape after a change and kept until the next.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator, Mapping

from sepm_exporter.catalog import BY_NAME, FAMILIES
from sepm_exporter.exposition import Sample, encode, header, lines
from sepm_exporter.samples import CLIENT_FAMILIES

_HEADERS = {f.name: encode(header(f)) for f in FAMILIES}
_CLIENT_INDEX = {name: i for i, name in enumerate(CLIENT_FAMILIES)}
_EMPTY = (b"",) * len(CLIENT_FAMILIES)


class Rendered:
    """Thread-safe: writers hold the exporter's lock; readers only take the joined bytes."""

    def __init__(self) -> None:
        self.whole: dict[str, bytes] = {}
        self.clients: dict[str, tuple[bytes, ...]] = {}  # name -> one chunk per client family
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._gzip: bytes | None = None

    def _changed(self) -> None:
        with self._lock:
            self._body = None
            self._gzip = None

    def set_family(self, name: str, samples: list[Sample]) -> None:
        rendered = encode(lines(BY_NAME[name], samples))
        if self.whole.get(name) != rendered:
            self.whole[name] = rendered
            self._changed()

    def set_client(self, name: str, samples: Mapping[str, list[Sample]]) -> None:
        chunks = [b""] * len(CLIENT_FAMILIES)
        for family, found in samples.items():
            chunks[_CLIENT_INDEX[family]] = encode(lines(BY_NAME[family], found))
        rendered = tuple(chunks)
        if rendered == _EMPTY:
            self.drop_client(name)
        elif self.clients.get(name) != rendered:
            self.clients[name] = rendered
            self._changed()

    def drop_client(self, name: str) -> None:
        if self.clients.pop(name, None) is not None:
            self._changed()

    def parts(self) -> Iterator[bytes]:
        """Catalog order: HELP/TYPE, then the family's lines (for client families, every client's chunk)."""
        for family in FAMILIES:
            yield _HEADERS[family.name]
            index = _CLIENT_INDEX.get(family.name)
            if index is None:
                yield self.whole.get(family.name, b"")
            else:
                yield b"".join(chunks[index] for chunks in self.clients.values())

    def cached(self) -> tuple[bytes | None, bytes | None]:
        """The body and gzip made since the last change, if any: a scrape needs no other lock for them."""
        with self._lock:
            return self._body, self._gzip

    def body(self) -> bytes:
        """Call with the exporter's lock held: the parts must not change while they are joined."""
        with self._lock:
            if self._body is None:
                self._body = b"".join(self.parts())
            return self._body

    def gzipped(self) -> bytes:
        """One gzip member; a scrape may append another (gzip streams may hold several)."""
        body = self.body()
        with self._lock:
            if self._gzip is None:
                compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
                self._gzip = compressor.compress(body) + compressor.flush()
            return self._gzip
