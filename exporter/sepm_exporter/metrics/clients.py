"""Client SyLink.xml files: which version each client holds, whether it is current, and whether it can trust a server.

Each client's lines are written here, directly and only here: a cold scan renders 100,000 of
them, so most of each line is built once per (file, verdict) and shared by every client holding
that file. `metrics/rendered.py` keeps the lines in blocks; it never builds a client series itself.

Which clients are written at all is `metrics/client_series.py`'s choice. In `problems` mode a
client is written with its `sepm_client_sylink_info` (its group and file) and the one series that
says what is wrong: `sepm_client_server_key_trusted` when it is untrusted (0) or unknown (-1),
`sepm_client_sylink_stale_since_timestamp_seconds` when it is stale; an unmatched client has its
info line alone (no group). Two series at most: 10,000 stranded clients stay 20,000 series.
"""

from __future__ import annotations

import functools

from sepm_exporter.judge.clients import ClientStatus, ClientVerdict
from sepm_exporter.metrics.client_series import Mode
from sepm_exporter.metrics.exposition import escape_label, format_value
from sepm_exporter.metrics.family import Family
from sepm_exporter.sources.inventory import ClientState

FAMILIES: tuple[Family, ...] = (
    Family("sepm_client_sylink_info", "gauge", ("client", "group_id", "sha256", "canonical_sha256", "group_set"),
           "A client's SyLink.xml; the value is 1. group_set names the groups sharing its file version, if several."),
    Family("sepm_client_sylink_modified_timestamp_seconds", "gauge", ("client",),
           "When the client's SyLink.xml was last written (file mtime)."),
    Family("sepm_client_sylink_current", "gauge", ("client", "group_id", "group_set"),
           "1 when the client's file equals its group's newest server-side file, 0 when it holds an older one."),
    Family("sepm_client_sylink_stale_since_timestamp_seconds", "gauge", ("client", "group_id", "group_set"),
           "When the group's server-side file moved on from the version the client still holds."),
    Family("sepm_client_server_key_trusted", "gauge", ("client",),
           "1 trusted (embeds a current key of a watched server), 0 untrusted (every listed server watched, "
           "none of their current keys embedded), -1 unknown."),
)
NAMES = tuple(f.name for f in FAMILIES)  # the order of a client's chunks
TRUST_VALUE: dict[bool | None, str] = {True: "1.0", False: "0.0", None: "-1.0"}  # -1: unknown, never untrusted
EMPTY = (b"",) * len(FAMILIES)


def _text(value: str) -> str:
    return escape_label(value) if ("\\" in value or '"' in value or "\n" in value) else value


@functools.lru_cache(maxsize=4096)
def _shared(sha256: str, canonical: str, verdict: ClientVerdict | None) -> tuple[str, str, str, str]:
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
    return info, current, stale, trusted


def chunks(name: str, client: ClientState, verdict: ClientVerdict | None, mode: Mode = Mode.ALL) -> tuple[bytes, ...]:
    """One client's lines, one chunk per family in `NAMES` order (b"" where the client has no series)."""
    facts = client.sylink.facts
    mtime = client.sylink.mtime
    if facts is None or mtime is None or mode is Mode.NONE:
        return EMPTY
    info, current, stale, trusted = _shared(facts.sha256, facts.canonical_sha256, verdict)
    who = f'{{client="{_text(name)}"'
    if mode is Mode.PROBLEMS:
        status = verdict.status if verdict is not None else None
        return (
            f"sepm_client_sylink_info{who}{info}".encode("utf-8", "replace"),
            b"",
            b"",
            f"sepm_client_sylink_stale_since_timestamp_seconds{who}{stale}".encode("utf-8", "replace")
            if stale and status is ClientStatus.STALE else b"",
            f"sepm_client_server_key_trusted{who}{trusted}".encode("utf-8", "replace")
            if trusted and status in (ClientStatus.UNTRUSTED, ClientStatus.UNKNOWN) else b"",
        )
    return (
        f"sepm_client_sylink_info{who}{info}".encode("utf-8", "replace"),
        f"sepm_client_sylink_modified_timestamp_seconds{who}}} {format_value(mtime)}\n".encode("utf-8", "replace"),
        f"sepm_client_sylink_current{who}{current}".encode("utf-8", "replace") if current else b"",
        f"sepm_client_sylink_stale_since_timestamp_seconds{who}{stale}".encode("utf-8", "replace") if stale else b"",
        f"sepm_client_server_key_trusted{who}{trusted}".encode("utf-8", "replace") if trusted else b"",
    )
