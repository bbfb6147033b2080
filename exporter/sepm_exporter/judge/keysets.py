"""Which server keys a computer holds, from SEPM's own records (`profileSerialNo`), with no client file.

Four rules, tried in order; each verdict names the rule that gave it (docs/rest-api.md says how sure
each one is):

1. `current`: its serial equals its group's current `policySerialNumber` -> it holds the group's
   current outbox SyLink.xml, so its keys are that file's (certain, as far as the serial is).
2. `remembered`: a serial of its group the exporter saw before -> the keys of the group's file at
   that time (kept per group, profile time -> key set, in the state file).
3. `older_than_certificate`: its profile was made before a server certificate's notBefore -> it
   cannot hold that certificate, nor its key unless the key is older than the certificate (a key
   the exporter saw in a profile made before the notBefore is not excluded). When that leaves it no
   current key, it is untrusted, unless the estate shows otherwise: a computer on a profile older
   than every certificate has checked in since the newest was made, which it could not have done
   had every key changed (`old_profiles_connect`); then it is unknown (`old_profiles_connect`). So a
   keep-key renewal seen with no history pages nobody once one such computer has checked in.
4. `unknown`: nothing above applies; with a reason when the input itself is the problem.

Trust is three-valued as for client files: trusted when the key set holds a current key; untrusted
only when every key it holds belongs to a watched server and none is current (rules 1-2), or when
every watched server's current key is excluded (rule 3); otherwise unknown, never untrusted.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sepm_exporter.judge.clients import ClientStatus, TrustBasis, trust
from sepm_exporter.sepm.serial import PolicySerial

FUTURE_SLACK_MS = 300_000  # a profile dated up to 5 minutes ahead is clock skew, not an error


class Rule(enum.StrEnum):
    """Which rule gave a computer's key set."""

    CURRENT = "current"
    REMEMBERED = "remembered"
    OLDER_THAN_CERTIFICATE = "older_than_certificate"
    UNKNOWN = "unknown"


class UnknownReason(enum.StrEnum):
    """Why a computer's key set cannot be told from its record: counted, never a crash nor a critical."""

    NONE = ""
    SERIAL_EMPTY = "serial_empty"
    SERIAL_MALFORMED = "serial_malformed"
    SERIAL_BAD_DATE = "serial_bad_date"
    NO_GROUP = "no_group"
    GROUP_UNKNOWN = "group_unknown"  # /groups does not list its group, or the group has no usable serial
    PROFILE_IN_FUTURE = "profile_in_future"
    OTHER_GROUP_PROFILE = "other_group_profile"  # the serial's prefix is not its group's
    NOT_SEEN = "not_seen"  # an older profile of its group the exporter never saw, made after every notBefore
    NO_OUTBOX = "no_outbox"  # its group's current file is not watched here
    OLD_PROFILES_CONNECT = "old_profiles_connect"  # profiles older than every certificate still check in: a kept key?


@dataclass(frozen=True, slots=True)
class CertificateTime:
    """A watched server's current certificate: its key and notBefore (Unix seconds)."""

    server: str
    key: str
    not_before: float


@dataclass(frozen=True, slots=True)
class GroupNow:
    """What the exporter knows of a group now: its current serial (parsed) and its current file's keys."""

    serial: PolicySerial | None
    keys: frozenset[str] | None  # the group's current outbox SyLink.xml's embedded keys; None when not watched


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """One computer's inferred key set and what follows."""

    rule: Rule
    keys: frozenset[str] | None  # the key set it holds (rules 1-2); None when not known as a whole
    excluded: frozenset[str]  # current keys it cannot hold (rule 3)
    trusted: bool | None
    status: ClientStatus
    reason: UnknownReason = UnknownReason.NONE
    profile_time: float | None = None  # Unix seconds (ms precision)


_SERIAL_REASONS = {"empty": UnknownReason.SERIAL_EMPTY, "malformed": UnknownReason.SERIAL_MALFORMED,
                   "bad_date": UnknownReason.SERIAL_BAD_DATE}


def keys_trust(keys: frozenset[str], basis: TrustBasis) -> bool | None:
    """Trust of a bare key set: a key is a listed server's when a watched server has had it."""
    return trust(tuple(("", key) for key in sorted(keys)), basis)


def _unknown(reason: UnknownReason, profile_time: float | None = None) -> KeyVerdict:
    return KeyVerdict(Rule.UNKNOWN, None, frozenset(), None, ClientStatus.UNKNOWN, reason, profile_time)


def _status(trusted: bool | None, current: bool) -> ClientStatus:
    if trusted is False:
        return ClientStatus.UNTRUSTED
    if not current:
        return ClientStatus.STALE
    return ClientStatus.CURRENT if trusted else ClientStatus.UNKNOWN


CHECK_IN_GRACE = 10.0  # seconds past a notBefore before a check-in counts as made with that certificate in place


def old_profiles_connect(certificates: tuple[CertificateTime, ...], sightings: Iterable[tuple[float, float]]) -> bool:
    """Whether some computer on a profile older than every watched server's current certificate has checked
    in more than CHECK_IN_GRACE after the newest of them was made: then at least one server still accepts a
    key from before those certificates (a renewal that kept it), and no such computer is certainly stranded.
    One pass over (profile time, last check-in), Unix seconds."""
    if not certificates:
        return False
    oldest = min(c.not_before for c in certificates)
    newest = max(c.not_before for c in certificates) + CHECK_IN_GRACE
    return any(profile < oldest and last > newest for profile, last in sightings)


def infer(group_id: str, serial: PolicySerial | None, serial_reason: str, group: GroupNow | None,
          remembered: Mapping[int, frozenset[str]], certificates: tuple[CertificateTime, ...],
          basis: TrustBasis, now: float, connects: bool = False) -> KeyVerdict:
    """Pure: one computer's record against its group, the remembered profiles and the servers' certificates.

    `remembered`: the group's profile time (ms) -> key set of its file then (judge/history.py);
    `connects`: computers on profiles older than every certificate still check in (`old_profiles_connect`).
    """
    if serial is None:
        return _unknown(_SERIAL_REASONS.get(serial_reason, UnknownReason.SERIAL_MALFORMED))
    when = serial.seconds
    if serial.time_ms > now * 1000 + FUTURE_SLACK_MS:
        return _unknown(UnknownReason.PROFILE_IN_FUTURE, when)
    if not group_id:
        return _unknown(UnknownReason.NO_GROUP, when)
    if group is None:  # a group /groups does not list: a record out of step with the rest, not evidence
        return _unknown(UnknownReason.GROUP_UNKNOWN, when)
    own = group_id[:4].upper() == serial.prefix
    if own and group is not None and group.serial is not None and serial == group.serial:
        if group.keys is None:
            return _unknown(UnknownReason.NO_OUTBOX, when)
        trusted = keys_trust(group.keys, basis)
        return KeyVerdict(Rule.CURRENT, group.keys, frozenset(), trusted, _status(trusted, True), profile_time=when)
    if own:
        keys = remembered.get(serial.time_ms)
        if keys is not None:
            trusted = keys_trust(keys, basis)
            return KeyVerdict(Rule.REMEMBERED, keys, frozenset(), trusted, _status(trusted, False), profile_time=when)
    older_keys = frozenset(k for t, keys in remembered.items() if t <= serial.time_ms for k in keys)
    excluded = frozenset(c.key for c in certificates if when < c.not_before and c.key not in older_keys)
    if excluded:
        if basis.current and basis.current <= excluded:  # no current key of any watched server is left to it
            if connects:  # ...unless the estate shows a key from before the certificates still works
                return KeyVerdict(Rule.OLDER_THAN_CERTIFICATE, None, excluded, None, ClientStatus.UNKNOWN,
                                  UnknownReason.OLD_PROFILES_CONNECT, when)
            return KeyVerdict(Rule.OLDER_THAN_CERTIFICATE, None, excluded, False, ClientStatus.UNTRUSTED, profile_time=when)
        return KeyVerdict(Rule.OLDER_THAN_CERTIFICATE, None, excluded, None, ClientStatus.UNKNOWN, profile_time=when)
    if not own:
        return _unknown(UnknownReason.OTHER_GROUP_PROFILE, when)
    if group.serial is None:
        return _unknown(UnknownReason.GROUP_UNKNOWN, when)
    return _unknown(UnknownReason.NOT_SEEN, when)
