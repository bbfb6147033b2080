"""Which clients get series of their own: a Prometheus can carry thousands of series, not 100,000 clients x 5.

By default (`problems`) only a client that needs action (stale, untrusted, unknown, unmatched) is
published by name; healthy clients are counted in `sepm_group_clients`. `all` publishes every
client (the exposition before this choice existed), `none` no client at all. In every mode a
ceiling (`clients.series_limit`) bounds the per-client series: an estate-wide outage cannot
multiply Prometheus' memory. Past it, whole clients are left out, problems after healthy ones, and
the series left out are counted (`sepm_exporter_client_series_dropped`); the report, the landing
page and `check --stranded` still name every client.

The choice is a predicate on a verdict (`needs_action`), not on a file, so another kind of client
evidence (a client known only from SEPM's REST API) is selected by the same rule once it has a
verdict. Admission is incremental: one client in or out costs a few dictionary steps, and a client
that leaves frees room for the first one waiting, so nothing is re-ranked over the whole estate.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sepm_exporter.judge.clients import ClientStatus, ClientVerdict


class Mode(enum.StrEnum):
    """`clients.series`."""

    PROBLEMS = "problems"
    ALL = "all"
    NONE = "none"


NEEDS_ACTION = frozenset({ClientStatus.STALE, ClientStatus.UNTRUSTED, ClientStatus.UNKNOWN, ClientStatus.UNMATCHED})
PROBLEM, HEALTHY = 0, 1  # admission levels: a problem is admitted before, and in place of, a healthy client


def needs_action(verdict: ClientVerdict | None) -> bool:
    """The selection's one question about a client; a client without a verdict has nothing to act on yet."""
    return verdict is not None and verdict.status in NEEDS_ACTION


def level(mode: Mode, verdict: ClientVerdict | None) -> int | None:
    """PROBLEM, HEALTHY, or None when the mode gives this client no series."""
    if mode is Mode.NONE:
        return None
    if needs_action(verdict):
        return PROBLEM
    return HEALTHY if mode is Mode.ALL else None


def series_count(mode: Mode, verdict: ClientVerdict | None) -> int:
    """How many series `metrics/clients.py` writes for such a client (the ceiling counts these)."""
    if mode is Mode.NONE:
        return 0
    if mode is Mode.ALL:  # info, modified, then current, stale_since and trusted where the verdict has them
        if verdict is None:
            return 2
        return 2 + (verdict.current is not None) + (verdict.stale_since is not None) + 1
    if not needs_action(verdict):
        return 0
    assert verdict is not None
    return 1 + (verdict.status in (ClientStatus.UNTRUSTED, ClientStatus.UNKNOWN, ClientStatus.STALE))


class Selection:
    """The clients whose series are published now, within `limit` series; the writer's alone.

    `judge` and `forget` say which of the clients they were handed are shown; clients moved in or
    out as a side effect (evicted for a problem, admitted when room frees) are handed over by
    `take_moved`, so the renderer touches exactly the blocks that change.
    """

    def __init__(self, mode: Mode | str, limit: int) -> None:
        self.mode = Mode(mode)
        self.limit = limit
        self.used = 0  # series of the shown clients
        self.dropped = 0  # series of the clients waiting
        self.shown: list[dict[str, int]] = [{}, {}]  # level -> client -> its series, in admission order
        self.waiting: list[dict[str, int]] = [{}, {}]  # level -> client -> its series, first come first admitted
        self._where: dict[str, tuple[bool, int]] = {}  # client -> (shown, level)
        self._moved: dict[str, bool] = {}  # client -> shown now, for clients moved by another client's change

    def is_shown(self, name: str) -> bool:
        place = self._where.get(name)
        return place is not None and place[0]

    def judge(self, names: Iterable[str], verdict: ClientVerdict | None) -> list[str]:
        """These clients now hold `verdict`: the ones among them that are shown after it."""
        want = level(self.mode, verdict)
        where = self._where
        if want is None:  # the healthy fast path of `problems`: most clients were never shown
            for name in names:
                if name in where:
                    self._remove(name)
                    self._moved[name] = False
            self._refill()
            return []
        cost = series_count(self.mode, verdict)
        names = list(names)
        shown = self.shown[want]
        if self.used + cost * len(names) <= self.limit and not any(name in where for name in names):
            shown.update(dict.fromkeys(names, cost))  # a cold scan's bundles, all within the ceiling
            where.update(dict.fromkeys(names, (True, want)))
            self.used += cost * len(names)
            if self._moved:
                for name in names:
                    self._moved.pop(name, None)
            return names
        out: list[str] = []
        for name in names:
            place = where.get(name)
            if place is not None:
                if place == (True, want) and shown[name] == cost:  # shown as it is: keep its place in line
                    out.append(name)
                    continue
                self._remove(name)
            if self._admit(name, want, cost):
                out.append(name)
                self._moved.pop(name, None)
            else:
                self._moved[name] = False
        self._refill()
        return out

    def forget(self, names: Iterable[str]) -> None:
        """These clients are gone or have no file to speak of; their room goes to the next waiting."""
        for name in names:
            if name in self._where:
                self._remove(name)
                self._moved.pop(name, None)
        self._refill()

    def take_moved(self) -> tuple[list[str], list[str]]:
        """(clients shown since the last call, clients hidden since), beyond those `judge` returned."""
        moved, self._moved = self._moved, {}
        return [n for n, shown in moved.items() if shown], [n for n, shown in moved.items() if not shown]

    def _admit(self, name: str, at: int, cost: int) -> bool:
        if self.used + cost > self.limit and at == PROBLEM:
            self._evict_healthy(cost)
        if self.used + cost <= self.limit:
            self.shown[at][name] = cost
            self.used += cost
            self._where[name] = (True, at)
            return True
        self.waiting[at][name] = cost
        self.dropped += cost
        self._where[name] = (False, at)
        return False

    def _evict_healthy(self, room: int) -> None:
        """Make `room` for a problem by moving the latest healthy clients back to the waiting line."""
        healthy = self.shown[HEALTHY]
        while healthy and self.used + room > self.limit:
            name, cost = healthy.popitem()
            self.used -= cost
            self.waiting[HEALTHY][name] = cost
            self.dropped += cost
            self._where[name] = (False, HEALTHY)
            self._moved[name] = False

    def _remove(self, name: str) -> None:
        shown, at = self._where.pop(name)
        if shown:
            self.used -= self.shown[at].pop(name)
        else:
            self.dropped -= self.waiting[at].pop(name)

    def _refill(self) -> None:
        """Admit waiting clients, problems first, in arrival order, while they fit."""
        for at in (PROBLEM, HEALTHY):
            queue = self.waiting[at]
            while queue:
                name, cost = next(iter(queue.items()))
                if self.used + cost > self.limit:
                    if at == PROBLEM and self.shown[HEALTHY]:
                        self._evict_healthy(cost)
                    if self.used + cost > self.limit:
                        return
                del queue[name]
                self.dropped -= cost
                self.shown[at][name] = cost
                self.used += cost
                self._where[name] = (True, at)
                self._moved[name] = True
