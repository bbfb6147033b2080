"""The `check` command's human report: per server, per group, clients, then every finding."""

from __future__ import annotations

from collections.abc import Mapping

from sepm_exporter.judge.clients import ClientStatus
from sepm_exporter.judge.findings import Finding, ServerLine, when

CLIENTS_SHOWN = 8
# C0, DEL and C1 controls spelled out: a client folder named "x\n  OK ..." must not forge a line,
# nor ESC sequences drive the terminal.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def expiry_words(days: float | None) -> str:
    """"expires in 12 d", "expires today", "expired 3 d ago": never a negative count."""
    if days is None:
        return "no certificate"
    if days < 0:
        return f"expired {-days:.0f} d ago" if days <= -1 else "expired today"
    return f"expires in {days:.0f} d" if days >= 1 else "expires today"


def named_subject(subject: str, names: Mapping[str, str]) -> str:
    """"group <ID>" as "group My Company\\Tokyo (<ID>)" where the group's file names it; other subjects as they are."""
    kind, _, rest = subject.partition(" ")
    group, _, tail = rest.partition(" on ")
    if kind != "group" or group not in names:
        return subject
    return f"group {names[group]} ({group})" + (f" on {tail}" if tail else "")


def render_report(lines: list[ServerLine], found: list[Finding], counts: dict[tuple[str, str, str], int],
                  names: Mapping[str, str] | None = None) -> str:
    """`names`: group ID -> its name (PreferredGroup), so the on-call reads what the console shows."""
    names = names or {}
    out = ["Servers:"]
    for line in lines:
        expiry = expiry_words(line.expires_in_days)
        state = "up" if line.root_up else "DOWN"
        key = line.public_key_sha256[:16] or "-"
        out.append(
            f"  {line.server:<12} site={line.site or '-':<8} root={state:<4} {expiry}, "
            f"{line.signature_hash or '-'} {line.key_bits or '-'}-bit, key {key}"
        )
    totals = {s.value: 0 for s in ClientStatus}
    for (_group, _set, state), count in counts.items():
        totals[state] = totals.get(state, 0) + count
    out.append("Clients: " + ", ".join(f"{state} {count}" for state, count in totals.items()))
    out.append("Findings:" if found else "Findings: none")
    for finding in found:
        out.append(f"  {finding.severity.name:<8} {named_subject(finding.subject, names)}: {finding.message}")
        details = [f"since {when(finding.since)}"] if finding.since is not None else []
        if finding.clients:
            shown = ", ".join(finding.clients[:CLIENTS_SHOWN])
            more = f" and {len(finding.clients) - CLIENTS_SHOWN} more" if len(finding.clients) > CLIENTS_SHOWN else ""
            details.append(f"clients: {shown}{more}")
        if finding.alert:
            details.append(f"alert {finding.alert}")
        if details:
            out.append(f"           {'; '.join(details)}")
    return "\n".join(line.translate(_CONTROLS) for line in out) + "\n"
