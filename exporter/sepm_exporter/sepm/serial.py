"""Policy serials as SEPM writes them: `718B-09/04/2023 12:56:58 775`.

The four hex digits before the dash are the first four hex digits of the group id (a constant per
group); the date-time and the three trailing digits are the profile's time, in UTC, to the
millisecond (the same instant as the group's `policyDate`). So two serials of one group are
ordered by their time, and a computer's `profileSerialNo` says when the profile it holds was made.
Parsing is a fixed-width check, never a regex over unbounded input.
"""

from __future__ import annotations

import calendar
import enum
import time
from dataclasses import dataclass

MAX_SERIAL_CHARS = 64  # anything longer is not a serial; refused before any parsing
_HEX = frozenset("0123456789abcdefABCDEF")


class SerialReason(enum.StrEnum):
    """Why a serial does not parse: a fixed set, counted per reason."""

    EMPTY = "empty"
    MALFORMED = "malformed"  # not PREFIX-MM/DD/YYYY HH:MM:SS mmm
    BAD_DATE = "bad_date"  # the shape is right, the date or time is not a real one


@dataclass(frozen=True, slots=True)
class PolicySerial:
    """A parsed serial: the group-id prefix (upper case) and the profile time in ms since the epoch (UTC)."""

    prefix: str
    time_ms: int

    @property
    def seconds(self) -> float:
        return self.time_ms / 1000.0


class SerialError(ValueError):
    """A serial that does not parse; `reason` says which way."""

    def __init__(self, reason: SerialReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _digits(text: str) -> int:
    if len(text) == 0 or not text.isascii() or not text.isdigit():
        raise SerialError(SerialReason.MALFORMED, "expected digits")
    return int(text)


def parse_serial(serial: str) -> PolicySerial:
    """`XXXX-MM/DD/YYYY HH:MM:SS mmm` -> prefix and UTC time in ms; SerialError otherwise.

    The prefix is 1-8 hex digits (four on every serial seen; a little slack costs nothing); the
    milliseconds part may be absent (then 0), as a serial cut by a report tool would be.
    """
    text = serial.strip()
    if not text:
        raise SerialError(SerialReason.EMPTY, "empty serial")
    if len(text) > MAX_SERIAL_CHARS:
        raise SerialError(SerialReason.MALFORMED, f"serial longer than {MAX_SERIAL_CHARS} characters")
    prefix, dash, rest = text.partition("-")
    if not dash or not 1 <= len(prefix) <= 8 or not set(prefix) <= _HEX:
        raise SerialError(SerialReason.MALFORMED, "no hex group prefix before a dash")
    parts = rest.split(" ")
    if len(parts) not in (2, 3):
        raise SerialError(SerialReason.MALFORMED, "expected 'MM/DD/YYYY HH:MM:SS mmm' after the dash")
    date, clock = parts[0].split("/"), parts[1].split(":")
    if len(date) != 3 or len(clock) != 3 or len(parts[0]) != 10 or len(parts[1]) != 8:
        raise SerialError(SerialReason.MALFORMED, "expected 'MM/DD/YYYY HH:MM:SS' after the dash")
    month, day, year = (_digits(p) for p in date)
    hour, minute, second = (_digits(p) for p in clock)
    millis = _digits(parts[2]) if len(parts) == 3 else 0
    if len(parts) == 3 and len(parts[2]) > 3:
        raise SerialError(SerialReason.MALFORMED, "more than three millisecond digits")
    if not (1 <= month <= 12 and 1970 <= year <= 9999 and hour < 24 and minute < 60 and second < 60):
        raise SerialError(SerialReason.BAD_DATE, "date or time out of range")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise SerialError(SerialReason.BAD_DATE, "no such day in that month")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return PolicySerial(prefix.upper(), seconds * 1000 + millis)


def format_serial(group_id: str, time_ms: int) -> str:
    """The serial SEPM writes for a group's profile made at `time_ms` (the inverse of `parse_serial`)."""
    seconds, millis = divmod(time_ms, 1000)
    t = time.gmtime(seconds)
    return (f"{group_id[:4].upper()}-{t.tm_mon:02d}/{t.tm_mday:02d}/{t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {millis:03d}")
