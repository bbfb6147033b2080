"""The `check` command's human report: per server, per group, clients, then every finding."""

from __future__ import annotations

from sepm_exporter.judge.clients import ClientStatus
from sepm_exporter.judge.findings import Finding, ServerLine, when

CLIENTS_SHOWN = 8
# C0, DEL and C1 controls spelled out: a client folder named "x\n  OK ..." must not forge a line,
# nor ESC sequences drive the terminal.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def render_report(lines: list[ServerLine], found: list[Finding], counts: dict[tuple[str, str, str], int]) -> str:
    out = ["Servers:"]
    for line in lines:
        expiry = f"expires in {line.expires_in_days:.0f} d" if line.expires_in_days is not None else "no certificate"
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
        out.append(f"  {finding.severity.name:<8} {finding.subject}: {finding.message}")
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
