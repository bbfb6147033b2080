"""Every computer of one /computers poll, kept in columns so 100,000 of them stay small.

A poll used to fold computers into per-group tallies and drop them; judging each computer's key
set needs them kept. One Python object per computer would cost ~1 KB each (a dict of strings); here
a computer is its name (the only string of its own), 16 bytes of `uniqueId` when it is the usual 32
hex digits, and a few machine integers that index interned tables: group ids, policy serials
(parsed once per distinct serial, not per computer) and agent versions repeat across an estate.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import NamedTuple, Protocol

from sepm_exporter.sepm.serial import PolicySerial, SerialError, parse_serial

_NO_TIME = -1
_ZERO_ID = bytes(16)
_ONLINE = {True: 1, False: 0, None: -1}
_ONLINE_BACK = {1: True, 0: False, -1: None}


class Computer(Protocol):
    """What the store takes from one decoded /computers item (`sepm.rest.Computer`)."""

    @property
    def group_id(self) -> str: ...
    @property
    def online(self) -> bool | None: ...
    @property
    def last_update(self) -> float | None: ...
    @property
    def profile_serial(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def unique_id(self) -> str: ...
    @property
    def agent_version(self) -> str: ...


class SerialFacts(NamedTuple):
    """One distinct `profileSerialNo`: parsed, or why not ("" when it parsed)."""

    raw: str
    parsed: PolicySerial | None
    reason: str


class StoredComputer(NamedTuple):
    """One computer as read back from the store (built on demand, never kept)."""

    name: str
    unique_id: str
    group_id: str
    online: bool | None
    last_update: float | None  # Unix seconds, ms precision
    serial: SerialFacts
    agent_version: str


class _Interned:
    """Strings (or facts) kept once, referred to by index."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}

    def of(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found


class ComputerStore:
    """Columns, one row per computer in the order the pages gave them."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids = bytearray()  # 16 bytes per computer: uniqueId as binary when it is 32 hex digits
        self._odd_ids: dict[int, str] = {}  # the rare uniqueId that is not 32 hex digits
        self._groups = _Interned()
        self._group = array("I")
        self._online = array("b")
        self._last = array("q")  # ms since the epoch, _NO_TIME when absent
        self._serials: list[SerialFacts] = []
        self._serial_index: dict[str, int] = {}
        self._serial = array("I")
        self._agents = _Interned()
        self._agent = array("I")

    def __len__(self) -> int:
        return len(self.names)

    def add(self, computer: Computer) -> None:
        row = len(self.names)
        self.names.append(computer.name)
        unique = computer.unique_id
        packed = _pack_id(unique)
        if packed is None:
            self._ids += _ZERO_ID
            self._odd_ids[row] = unique
        else:
            self._ids += packed
        group = self._groups.index.get(computer.group_id)
        self._group.append(group if group is not None else self._groups.of(computer.group_id))
        self._online.append(_ONLINE[computer.online])
        last = computer.last_update
        self._last.append(_NO_TIME if last is None else round(last * 1000))
        serial = self._serial_index.get(computer.profile_serial)
        self._serial.append(serial if serial is not None else self._serial_of(computer.profile_serial))
        agent = self._agents.index.get(computer.agent_version)
        self._agent.append(agent if agent is not None else self._agents.of(computer.agent_version))

    def _serial_of(self, raw: str) -> int:
        found = self._serial_index.get(raw)
        if found is None:
            try:
                facts = SerialFacts(raw, parse_serial(raw), "")
            except SerialError as exc:
                facts = SerialFacts(raw, None, exc.reason.value)
            found = self._serial_index[raw] = len(self._serials)
            self._serials.append(facts)
        return found

    def row(self, index: int) -> StoredComputer:
        last = self._last[index]
        unique = self._odd_ids.get(index)
        if unique is None:
            unique = self._ids[index * 16:(index + 1) * 16].hex().upper()
        return StoredComputer(
            self.names[index], unique, self._groups.values[self._group[index]], _ONLINE_BACK[self._online[index]],
            None if last == _NO_TIME else last / 1000.0, self._serials[self._serial[index]],
            self._agents.values[self._agent[index]],
        )

    def judged(self, index: int) -> tuple[str, str, SerialFacts, int]:
        """What a verdict needs, without building the whole row: name, group id, serial, agent index."""
        return (self.names[index], self._groups.values[self._group[index]], self._serials[self._serial[index]],
                self._agent[index])

    def agents(self) -> list[str]:
        """The distinct agent versions, by the index `judged` gives."""
        return self._agents.values

    def identity(self, index: int) -> bytes | str:
        """What tells one computer from another across partners' lists: its uniqueId (packed, or as given)."""
        odd = self._odd_ids.get(index)
        if odd is None:
            return bytes(self._ids[index * 16:(index + 1) * 16])
        return odd or f"name:{self.names[index]}"

    def last_ms(self, index: int) -> int:
        """The last check-in in ms (-1 when absent)."""
        return self._last[index]

    def __iter__(self) -> Iterator[StoredComputer]:
        return (self.row(i) for i in range(len(self.names)))

    def group_ids(self) -> list[str]:
        """Every group id a computer named ("" for a computer with no group)."""
        return list(self._groups.values)


def _pack_id(unique: str) -> bytes | None:
    """32 hex digits as 16 bytes; None for anything else (kept as text). Upper-case hex round-trips."""
    if len(unique) != 32 or not (unique.isupper() or unique.isdigit()):  # no copy made to compare the case
        return None
    try:
        packed = bytes.fromhex(unique)
    except ValueError:
        return None
    return packed if len(packed) == 16 else None  # fromhex skips spaces: "0A 0B..." is not an id
