"""Families in, a frozen `Published` exposition out: what a scrape sends, swapped in by reference."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from sepm_exporter.judge.clients import ClientVerdict
from sepm_exporter.metrics import servers as server_metrics
from sepm_exporter.metrics.client_series import Mode, Selection
from sepm_exporter.metrics.family import Sample
from sepm_exporter.metrics.rendered import Published, Rendered

SERVER_FAMILIES = frozenset(f.name for f in server_metrics.FAMILIES)  # what a background source may add to


class Publisher:
    """Keeps each family's samples, rendered, and the last `Published`.

    An area owns its families (`set_families`); a background source may add samples to the server
    certificate families (`contribute`), which survive the area's next re-render. Only the
    exporter's writer calls in; readers take `published` without a lock.
    """

    def __init__(self, client_chunks: Callable[[str], tuple[bytes, ...]], selection: Selection | None = None) -> None:
        self.rendered = Rendered(client_chunks)
        # which clients have series of their own (clients.series, series_limit); without one, every client
        self.selection = selection if selection is not None else Selection(Mode.ALL, 2**62)
        self._own: dict[str, list[Sample]] = {}  # each family's samples from its own area
        self._contributed: dict[str, dict[str, list[Sample]]] = {}  # family -> background source -> samples added
        self.published: Published = self.rendered.publish()
        self.seconds = 0.0  # the last rendering and compression of what changed (benchmarks read it)

    def set_families(self, families: Mapping[str, list[Sample]]) -> None:
        """An area's own samples, followed by what background sources added to the same families."""
        for name, found in families.items():
            self._own[name] = found
            added = self._contributed.get(name)
            self.rendered.set_family(name, [*found, *(s for source in sorted(added) for s in added[source])] if added else found)

    def replace(self, families: Mapping[str, list[Sample]]) -> None:
        """Whole families a background source owns outright (the REST API's, the probes')."""
        for name, found in families.items():
            self.rendered.set_family(name, found)

    def contribute(self, source: str, families: Mapping[str, list[Sample]]) -> None:
        """`source`'s samples in the server families, replacing what it added before."""
        for name, found in families.items():
            if name not in SERVER_FAMILIES:
                raise ValueError(f"{name} is not a server certificate family")
            by_source = self._contributed.setdefault(name, {})
            if found:
                by_source[source] = list(found)
            else:
                by_source.pop(source, None)
        self.set_families({name: self._own.get(name, []) for name in families})

    def clients(self, judged: list[tuple[list[str], ClientVerdict]], gone: list[str]) -> None:
        """Clients judged again (with their verdicts) and clients with no verdict now: their series follow.

        Only the clients the selection shows are rendered; a client moving between healthy and
        problem, or admitted when another frees room, touches its own block and no other.
        """
        rendered, selection = self.rendered, self.selection
        selection.forget(gone)
        for name in gone:
            rendered.drop_client(name)
        for held, verdict in judged:
            shown = selection.judge(held, verdict)
            if shown:
                rendered.touch_clients(shown)
        up, down = selection.take_moved()
        if up:
            rendered.touch_clients(up)
        for name in down:
            rendered.drop_client(name)

    def publish(self) -> None:
        """Render what changed and swap the result in."""
        started = time.perf_counter()
        self.published = self.rendered.publish()
        self.seconds = time.perf_counter() - started
