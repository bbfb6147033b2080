"""What needs attention, as plain data: `check` prints it, the landing page tabulates it.

The thresholds mirror the shipped alert rules so that `check` and the pager agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sepm_exporter.judge import served
from sepm_exporter.judge.derived import Derived
from sepm_exporter.judge.finding import Finding as Finding  # re-exported: the table's vocabulary, shared with judge.served
from sepm_exporter.judge.finding import Severity as Severity
from sepm_exporter.judge.history import History
from sepm_exporter.judge.problems import failing
from sepm_exporter.sources.inventory import Inventory

WEAK_HASHES = frozenset({"sha1", "md5", "md2", "md4"})
DAY = 86400.0


@dataclass(frozen=True)
class ServerLine:
    """A server's certificate at a glance."""

    server: str
    site: str
    root_up: bool
    expires_in_days: float | None
    signature_hash: str
    key_bits: int
    public_key_sha256: str


def server_lines(inventory: Inventory, now: float) -> list[ServerLine]:
    lines = []
    for name, server in inventory.servers.items():
        observed = server.server_certificate
        leaf = observed.facts.leaf if observed is not None and observed.facts is not None else None
        lines.append(
            ServerLine(
                server=name,
                site=server.config.site,
                root_up=server.root_up,
                expires_in_days=(leaf.not_after - now) / DAY if leaf else None,
                signature_hash=leaf.signature_hash if leaf else "",
                key_bits=leaf.key_bits if leaf else 0,
                public_key_sha256=leaf.public_key_sha256 if leaf else "",
            )
        )
    return lines


def findings(inventory: Inventory, history: History, derived: Derived, now: float) -> list[Finding]:
    """Every problem, worst first."""
    out: list[Finding] = []
    for line in server_lines(inventory, now):
        subject = f"server {line.server}"
        if not line.root_up:
            out.append(Finding(Severity.CRITICAL, subject, "root cannot be read"))
        if line.expires_in_days is None:
            out.append(Finding(Severity.WARNING, subject, "no readable server certificate"))
            continue
        if line.expires_in_days < 0:
            out.append(Finding(Severity.CRITICAL, subject, f"certificate expired {-line.expires_in_days:.0f} days ago"))
        elif line.expires_in_days < 7:
            out.append(Finding(Severity.CRITICAL, subject, f"certificate expires in {line.expires_in_days:.1f} days"))
        elif line.expires_in_days < 30:
            out.append(Finding(Severity.WARNING, subject, f"certificate expires in {line.expires_in_days:.0f} days"))
        if line.signature_hash in WEAK_HASHES:
            out.append(
                Finding(
                    Severity.WARNING,
                    subject,
                    f"certificate signed with {line.signature_hash}: renew WITHOUT a new key, or redistribute SyLink.xml first",
                )
            )
        entry = history.servers.get(line.server)
        if entry is not None and entry.previous is not None and entry.changed_at is not None:
            severity = Severity.CRITICAL if entry.previous.signature_hash in WEAK_HASHES else Severity.WARNING
            out.append(Finding(severity, subject, f"public key changed (previous key signed with {entry.previous.signature_hash})"))
    for (server, group_id), match in sorted(derived.key_match.items()):
        if not match:
            out.append(Finding(Severity.CRITICAL, f"group {group_id}", f"SyLink.xml on {server} does not embed {server}'s current key"))
    for group_id, mismatch in sorted(derived.replica_mismatch.items()):
        if mismatch:
            out.append(Finding(Severity.WARNING, f"group {group_id}", "replication partners disagree on SyLink.xml"))
    for client, verdict in sorted(derived.verdicts.items()):
        if verdict.trusted is False:
            out.append(Finding(Severity.CRITICAL, f"client {client}", "SyLink.xml embeds no current server key: cannot connect"))
        elif verdict.current is False:
            out.append(Finding(Severity.WARNING, f"client {client}", f"holds an older SyLink.xml of group {verdict.group_id or '?'}"))
        elif verdict.current is None:
            out.append(Finding(Severity.WARNING, f"client {client}", "SyLink.xml matches no group file"))
    for problem in failing(inventory):
        owner = problem.server or problem.client
        out.append(Finding(Severity.WARNING, f"file {owner}:{problem.file}", problem.reason))
    out += served.findings(inventory)
    return sorted(out, key=lambda f: -f.severity)


def worst(found: list[Finding]) -> Severity:
    return max((f.severity for f in found), default=Severity.OK)
