"""Memory across restarts: each server's key history and the versions of each group's SyLink.xml.

A key change is only visible as a change: without remembering the previous key the exporter
cannot say "this server's key was replaced", which is the whole incident. Group versions let a
client be told "stale" (it holds an earlier version) apart from "unmatched" (it holds none).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sepm_exporter.sepm.certificate import CertificateFacts

STATE_VERSION = 1
MAX_GROUP_VERSIONS = 16
MAX_GROUP_PROFILES = 16  # per group: profile time -> key set, for computers known only through the API
MAX_PROFILE_KEYS = 16  # keys embedded in one profile (a SyLink.xml lists a few servers)
# Bounds: a state file is read whole at start, so its size is capped before it is read. 100,000
# groups of 16 versions is far past any SEPM site and still a few tens of MB.
MAX_STATE_BYTES = 64 * 1024 * 1024
MAX_GROUPS = 100_000
MAX_KEY_BITS = 65_536
_MAX_NUMBER_DIGITS = 20


@dataclass(frozen=True)
class KeyRecord:
    """A public key's identity and how it was signed: enough to say "the replaced key was SHA-1"."""

    public_key_sha256: str
    signature_hash: str
    key_bits: int


@dataclass
class ServerHistory:
    """The current key, the one it replaced, and when the exporter saw the change."""

    current: KeyRecord | None = None
    previous: KeyRecord | None = None
    changed_at: float | None = None
    seen_at: float | None = None  # when the exporter first saw the current certificate (key, hash and size)


@dataclass(frozen=True)
class GroupVersion:
    """A version of a group's file, first seen at the file's mtime."""

    canonical_sha256: str
    first_seen: float


@dataclass(frozen=True)
class ProfileKeys:
    """A group profile the exporter saw: its time (the policy serial's, ms) and the keys its file embedded."""

    time_ms: int
    keys: tuple[str, ...]


@dataclass
class History:
    """The state file's content."""

    servers: dict[str, ServerHistory] = field(default_factory=dict)
    groups: dict[str, list[GroupVersion]] = field(default_factory=dict)
    profiles: dict[str, list[ProfileKeys]] = field(default_factory=dict)  # group -> profiles, oldest first


def record_profile(history: History, group_id: str, time_ms: int, keys: Iterable[str]) -> bool:
    """Remember a group's profile (serial time -> the keys its current file embeds); True when new or changed.

    The newest MAX_GROUP_PROFILES per group are kept, so the state file stays bounded.
    """
    entry = ProfileKeys(time_ms, tuple(sorted(set(keys)))[:MAX_PROFILE_KEYS])
    profiles = history.profiles.setdefault(group_id, [])
    for index, known in enumerate(profiles):
        if known.time_ms == time_ms:
            if known == entry:
                return False
            profiles[index] = entry
            return True
    profiles.append(entry)
    profiles.sort(key=lambda p: p.time_ms)
    del profiles[:-MAX_GROUP_PROFILES]
    return True


def remembered_profiles(history: History, group_id: str) -> dict[int, frozenset[str]]:
    """A group's remembered profiles as profile time (ms) -> key set, for `judge.keysets.infer`."""
    return {p.time_ms: frozenset(p.keys) for p in history.profiles.get(group_id, ())}


def record_key(history: History, server: str, facts: CertificateFacts, now: float) -> bool:
    """Note the server's current key; True when it replaced a different one."""
    entry = history.servers.setdefault(server, ServerHistory())
    key = KeyRecord(facts.public_key_sha256, facts.signature_hash, facts.key_bits)
    if entry.current is None:
        entry.current = key
        entry.seen_at = now
        return False
    if entry.current.public_key_sha256 == key.public_key_sha256:
        if entry.current != key:  # same key, re-issued with another hash: keep the key's identity
            entry.current = key
            entry.seen_at = now
        elif entry.seen_at is None:  # a state file from before seen_at was kept
            entry.seen_at = now
        return False
    entry.seen_at = now
    entry.previous = entry.current
    entry.current = key
    entry.changed_at = now
    return True


def record_group_version(history: History, group_id: str, canonical: str, seen_at: float) -> bool:
    """Append a version the first time it is seen; True when it is new."""
    versions = history.groups.setdefault(group_id, [])
    if any(v.canonical_sha256 == canonical for v in versions):
        return False
    versions.append(GroupVersion(canonical, seen_at))
    versions.sort(key=lambda v: v.first_seen)
    del versions[:-MAX_GROUP_VERSIONS]
    return True


class StateFileError(Exception):
    """The state file could not be used; the exporter starts afresh and says so."""


def _int(text: str) -> int:
    """json's int hook: a 5,000-digit integer is refused before it is built."""
    if len(text) > _MAX_NUMBER_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def _float(text: str) -> float:
    """json's float hook: `1e400` would be inf, and inf reaches int() and timestamps later."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _finite(raw: Any) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _key(raw: Any) -> KeyRecord | None:
    if raw is None:
        return None
    bits = raw["key_bits"]
    if isinstance(bits, bool) or not isinstance(bits, int | float) or not 0 <= bits <= MAX_KEY_BITS:
        raise ValueError("key_bits out of range")
    return KeyRecord(str(raw["public_key_sha256"]), str(raw["signature_hash"]), int(bits))


def _profile(raw: Any) -> ProfileKeys:
    when = raw["time_ms"]
    if isinstance(when, bool) or not isinstance(when, int) or when < 0:
        raise ValueError("time_ms out of range")
    keys = raw["keys"]
    if not isinstance(keys, list):
        raise TypeError("keys is not a list")
    return ProfileKeys(when, tuple(str(k) for k in keys[:MAX_PROFILE_KEYS]))


def decode(text: str) -> History:
    """Parse a state file; StateFileError on anything unexpected (empty, corrupt, future version)."""
    if not text.strip():
        raise StateFileError("state file is empty")
    try:
        raw = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise StateFileError(f"state file is not JSON (line {exc.lineno})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # huge numbers, 100,000 nested brackets
        raise StateFileError(f"state file is not usable JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise StateFileError("state file is not a JSON object")
    version = raw.get("version")
    if version != STATE_VERSION:
        raise StateFileError(f"state file version {version!r} is not {STATE_VERSION}")
    try:
        servers = {
            str(name): ServerHistory(
                current=_key(entry.get("current")),
                previous=_key(entry.get("previous")),
                changed_at=_finite(entry["changed_at"]) if entry.get("changed_at") is not None else None,
                seen_at=_finite(entry["seen_at"]) if entry.get("seen_at") is not None else None,
            )
            for name, entry in raw.get("servers", {}).items()
        }
        groups = {
            str(group): [GroupVersion(str(v["canonical_sha256"]), _finite(v["first_seen"]))
                         for v in versions[-MAX_GROUP_VERSIONS:]]
            for group, versions in raw.get("groups", {}).items()
        }
        profiles = {str(group): [_profile(p) for p in entries[-MAX_GROUP_PROFILES:]]
                    for group, entries in raw.get("profiles", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise StateFileError(f"state file has an unexpected shape ({type(exc).__name__})") from None
    history = History(servers=servers, groups=groups, profiles=profiles)
    bound(history)
    return history


def bound(history: History) -> None:
    """Keep the newest MAX_GROUPS groups: the file's size stays bounded whatever it was given."""
    if len(history.groups) > MAX_GROUPS:
        newest = sorted(history.groups, key=lambda g: max((v.first_seen for v in history.groups[g]), default=0.0))
        for group in newest[:-MAX_GROUPS]:
            del history.groups[group]
    if len(history.profiles) > MAX_GROUPS:
        by_time = sorted(history.profiles, key=lambda g: max((p.time_ms for p in history.profiles[g]), default=0))
        for group in by_time[:-MAX_GROUPS]:
            del history.profiles[group]


def prune(history: History, servers: Iterable[str]) -> int:
    """Forget servers that are not configured any more; how many were dropped.

    Their key history cannot be published (no series carries an unknown server) and would only
    grow the file at every save.
    """
    known = set(servers)
    gone = [name for name in history.servers if name not in known]
    for name in gone:
        del history.servers[name]
    return len(gone)


def encode(history: History) -> str:
    """Serialise; stable key order so that diffs of the file are readable."""
    return json.dumps({"version": STATE_VERSION, **asdict(history)}, indent=1, sort_keys=True)


def load(path: Path) -> tuple[History, str | None]:
    """The history and, when the file was unusable, why (reported, never fatal)."""
    try:
        size = path.stat().st_size
        if size > MAX_STATE_BYTES:
            return History(), f"state file is {size} bytes, over the {MAX_STATE_BYTES}-byte cap"
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return History(), None
    except (OSError, UnicodeDecodeError) as exc:
        return History(), f"state file unreadable: {type(exc).__name__}"
    try:
        return decode(text), None
    except StateFileError as exc:
        return History(), str(exc)
    except Exception as exc:  # anything unforeseen: start afresh and set the file aside, never crash
        return History(), f"state file not usable ({type(exc).__name__})"


BAD_COPIES = 3  # unusable state files kept for the operator: `.bad` (the newest), `.bad.1`, `.bad.2`


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def previous_path(path: Path) -> Path:
    """The state before the last save: what a corrupt state file falls back to."""
    return path.with_name(path.name + ".previous")


def save(path: Path, history: History) -> None:
    """Atomic: write a temp file, flush it to disk, keep the last saved state as `.previous`, rename
    over. A kill at any point leaves a valid file or a valid `.previous` (`recover` reads either); a
    write that fails (a full disk) removes its temp file rather than leave it behind, empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(encode(history))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    if path.is_file():
        os.replace(path, previous_path(path))
    os.replace(temp, path)


@dataclass(frozen=True)
class Recovered:
    """What a start takes from the state file: its history, why the file was unusable (None: it was
    fine or absent), and the `.previous` file the history came from instead, if any."""

    history: History
    problem: str | None
    restored_from: Path | None = None


def recover(path: Path) -> Recovered:
    """The state at start: the file, or when it is unusable (or missing after a kill mid-save) the
    state saved before it. A temp file left by a kill or a full disk is removed first."""
    with contextlib.suppress(OSError):
        temp_path(path).unlink()
    history, problem = load(path)
    if problem is None and (path.exists() or not previous_path(path).exists()):
        return Recovered(history, None)
    previous = previous_path(path)
    kept, kept_problem = load(previous)
    if kept_problem is None and previous.exists():
        return Recovered(kept, problem, previous)
    return Recovered(history, problem)


def set_aside(path: Path) -> Path:
    """Move an unusable state file to `<name>.bad`, the older copies shifted to `.bad.1` .. (BAD_COPIES in all)."""
    bad = path.with_name(path.name + ".bad")
    copies = [bad, *(path.with_name(f"{path.name}.bad.{n}") for n in range(1, BAD_COPIES))]
    for older, newer in zip(reversed(copies[1:]), reversed(copies[:-1]), strict=True):
        if newer.exists():
            os.replace(newer, older)
    os.replace(path, bad)
    return bad
