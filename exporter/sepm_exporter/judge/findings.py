"""What needs attention, as plain data: `check` prints it, the landing page tabulates it.

One table, `VERDICTS`, says for every finding what it is, how severe, how long it must hold and
when it clears. The shipped alert rules say the same in PromQL; tests/alerts/test_verdicts.py holds
the table and the rules equal, and tests/e2e/test_agreement.py runs both on every lab incident
step. A finding is one subject the on-call acts on (a server, a group or a set of groups sharing
one file, a file), with the affected clients listed, never one finding per client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sepm_exporter.judge import renewal, served
from sepm_exporter.judge.derived import Derived
from sepm_exporter.judge.finding import Finding as Finding  # re-exported: the table's vocabulary, shared with judge.served
from sepm_exporter.judge.finding import Severity as Severity
from sepm_exporter.judge.history import History
from sepm_exporter.judge.problems import failing
from sepm_exporter.judge.renewal import RenewalPlan
from sepm_exporter.sources.inventory import Inventory

WEAK_HASHES = frozenset({"sha1", "md5", "md2", "md4"})
DAY = 86400.0
WINDOW_FACTOR = 1.5  # a heartbeat window: (heartbeat + randomization range) x 1.5
KEY_CHANGE_WINDOWS = 3  # SEPMServerKeyChanged holds for three of the server's heartbeat windows
EXPIRY_SOON_DAYS = 30
EXPIRY_IMMINENT_DAYS = 7
WEAK_KEY_BITS = 2048


@dataclass(frozen=True)
class Verdict:
    """One row of the verdict table: a finding's condition, severity, hold and clearing."""

    alert: str
    severity: Severity
    what: str
    hold: str  # how long the condition must hold before it is a finding (and the alert fires)
    hold_seconds: float  # the rule's fixed `for:`; 0 when the hold is a window computed from the metrics
    clears: str
    fix: str


_RENEW = "renew WITHOUT 'generate new key' (same key: no client is stranded), or redistribute SyLink.xml first"
VERDICTS: tuple[Verdict, ...] = (
    Verdict("SEPMServerCertificateExpiringSoon", Severity.WARNING, "a server certificate expires within 30 days",
            "at once (the expiry date is a fact)", 0, "renewed, or within 7 days (ExpiryImminent takes over)", _RENEW),
    Verdict("SEPMServerCertificateExpiryImminent", Severity.CRITICAL, "a server certificate expires within 7 days",
            "at once", 0, "renewed, or expired (Expired takes over)", _RENEW),
    Verdict("SEPMServerCertificateExpired", Severity.CRITICAL, "a server certificate has expired",
            "at once", 0, "renewed", _RENEW),
    Verdict("SEPMServerCertificateWeakSignature", Severity.WARNING, "a server certificate is signed with SHA-1 or MD5",
            "at once", 0, "renewed with a SHA-256 signature",
            "renew WITHOUT generating a new key: it re-signs with SHA-256 and strands nobody (with a key under 2048 "
            "bits the weak-key warning stays); a new key strands every client that holds only the old one: "
            "renew one partner at a time and let clients pull first (docs/renewing-safely.md)"),
    Verdict("SEPMServerCertificateWeakKey", Severity.WARNING, "an RSA/DSA server key under 2048 bits, SHA-256 signed",
            "at once", 0, "a new key of 2048 bits or more",
            "a new key is the only fix: let every client pull a SyLink.xml embedding it first (renew one partner, "
            "wait for the rollout, then the other)"),
    Verdict("SEPMServerKeyChanged", Severity.CRITICAL,
            "a server's public key changed and this exporter sees no client (file or SEPM record) to tell who still trusts it",
            "at once", 0, "three heartbeat windows after the change, or clients are seen",
            "find out which clients hold only the old key: give the exporter their SyLink.xml (a client collection) "
            "or the REST API; until then import a fresh SyLink.xml on the clients (SylinkDrop.exe -silent), or restore the old key"),
    Verdict("SEPMServerKeyChanged", Severity.WARNING, "a server's public key changed; not every client seen embeds it yet",
            "at once", 0, "every client seen embeds the new key, or three heartbeat windows after the change",
            "watch the rollout reach 100 %; clients that trust no current key are listed under SEPMClientServerKeyUntrusted"),
    Verdict("SEPMSyLinkServerKeyMismatch", Severity.CRITICAL, "a group's outbox file does not embed its server's current key",
            "a heartbeat window after the file's last write and after the key change", 0,
            "the outbox file embeds the key", "let the server rewrite its outbox (restart the service) and replicate"),
    Verdict("SEPMSyLinkReplicaMismatch", Severity.WARNING, "replication partners disagree on a group's file",
            "a heartbeat window after the newest copy's write", 0, "the partners agree",
            "run replication; if the server lists differ, fix the management server list on one side"),
    Verdict("SEPMClientSyLinkStale", Severity.WARNING,
            "clients of a group hold an old file, past a window (a lagging rollout; those that trust no current key "
            "are SEPMClientServerKeyUntrusted, the page)",
            "a heartbeat window after the group's file moved on", 0, "the clients pull",
            "check the clients are online; smc -updateconfig, or a Communication Update Package"),
    Verdict("SEPMClientServerKeyUntrusted", Severity.CRITICAL,
            "clients embed none of the current keys of the servers they list, all of which are watched",
            "at once", 0, "the clients hold a file with a current key, or the old key is back",
            "import a fresh SyLink.xml on these clients (SylinkDrop.exe -silent), or restore the old key"),
    Verdict("SEPMExporterFileErrors", Severity.WARNING, "a watched file cannot be read or parsed",
            "5 minutes on the pager; check reports at once (a one-shot scan cannot tell how long)", 300,
            "the file reads and parses", "see the reason in docs/metrics.md"),
    Verdict("SEPMExporterRootDown", Severity.WARNING, "a watched root cannot be read; its last known facts are served",
            "5 minutes on the pager; check reports at once", 300, "the root can be read",
            "restore the share or mount; the exporter picks it up by itself"),
    # What the servers serve (alerts/served.rules.yml): found by judge.served from the keystore and the probes.
    Verdict("SEPMServedCertificateMismatch", Severity.CRITICAL,
            "a probed endpoint serves another key than server.crt on disk",
            "15 minutes on the pager (a restart's length); check reports at once", 900,
            "the service serves the key on disk",
            "restart the SEPM services (Apache and Tomcat) so they load the renewed certificate; if only Tomcat "
            "differs, re-import the certificate into keystore.jks (Broadcom KB 158445)"),
    Verdict("SEPMKeystoreKeyMismatch", Severity.WARNING, "tomcat/etc/keystore.jks holds another key than server.crt",
            "15 minutes on the pager; check reports at once", 900, "the keystore's leaf key is server.crt's key",
            "re-import the certificate and key into the keystore (Broadcom KB 158445), then restart the services"),
    Verdict("SEPMProbeDown", Severity.WARNING, "a configured TLS endpoint cannot be probed",
            "5 minutes on the pager; check reports at once", 300, "a probe of the endpoint reads a certificate",
            "check that the service listens on that port and the exporter's host may reach it; the reason says which"),
)
VERDICT = {(v.alert, v.severity): v for v in VERDICTS}


def with_verdict(finding: Finding) -> Finding:
    """A finding made outside this module (the keystore, a probe round) with the table's fix when it has none."""
    verdict = VERDICT.get((finding.alert, finding.severity))
    if verdict is None or finding.fix:
        return finding
    return dataclasses.replace(finding, fix=verdict.fix)
GROUP_ALERTS = frozenset({"SEPMSyLinkReplicaMismatch", "SEPMClientSyLinkStale", "SEPMClientServerKeyUntrusted"})


def group_subject(group_id: str, group_set: str = "") -> str:
    """A group, a set of groups sharing one file (named by `group_set`), or clients of no group."""
    if group_set:
        return f"groups {group_set}"
    return f"group {group_id}" if group_id else "clients of no group"


def alert_subject(alert: str, labels: Mapping[str, str]) -> str:
    """The subject of a firing alert, spelled as the finding that mirrors it spells its own."""
    server = labels.get("server", "")
    if alert == "SEPMExporterFileErrors":
        return f"file {server or labels.get('client', '')}:{labels.get('file', '')}"
    if alert == "SEPMExporterRootDown":
        return f"server {server}" if server else f"client root {labels.get('client_root', '')}"
    if alert == "SEPMSyLinkServerKeyMismatch":
        return f"group {labels.get('group_id', '')} on {server}"
    if alert in GROUP_ALERTS:
        return group_subject(labels.get("group_id", ""), labels.get("group_set", ""))
    return f"server {server}"


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


def group_windows(inventory: Inventory) -> dict[str, float]:
    """Group -> its heartbeat window, the largest over the partners (as `sepm:group_heartbeat_window_seconds`)."""
    out: dict[str, float] = {}
    for server in inventory.servers.values():
        for group_id, files in server.groups.items():
            facts = files.sylink.facts
            if facts is not None and facts.heartbeat_seconds is not None:
                window = WINDOW_FACTOR * (facts.heartbeat_seconds + facts.randomization_seconds)
                out[group_id] = max(out.get(group_id, window), window)
    return out


def server_windows(inventory: Inventory) -> dict[str, float]:
    """Server -> the largest heartbeat window of its groups (as `sepm:server_heartbeat_window_seconds`)."""
    out: dict[str, float] = {}
    for name, server in inventory.servers.items():
        windows = [WINDOW_FACTOR * (f.heartbeat_seconds + f.randomization_seconds)
                   for f in (g.sylink.facts for g in server.groups.values())
                   if f is not None and f.heartbeat_seconds is not None]
        if windows:
            out[name] = max(windows)
    return out


def duration(seconds: float) -> str:
    """A positive duration in words, coarse: "3d 4h", "5h 2m", "40s"."""
    seconds = max(seconds, 0.0)
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def plural(count: int, noun: str) -> str:
    """"1 client", "2 clients": every count the product prints goes through here."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def when(timestamp: float | None) -> str:
    return "" if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _make(alert: str, severity: Severity, subject: str, message: str, since: float | None = None,
          clients: tuple[str, ...] = ()) -> Finding:
    return Finding(severity, subject, message, alert, since, clients, VERDICT[(alert, severity)].fix)


def _server_findings(inventory: Inventory, history: History, now: float, seen: int,
                     rollout: Mapping[str, int]) -> list[Finding]:
    """`seen`: clients this exporter knows (by their file or SEPM's records);
    `rollout`: server -> how many of them embed its current key."""
    out: list[Finding] = []
    windows = server_windows(inventory)
    for name, server in inventory.servers.items():
        subject = f"server {name}"
        if not server.root_up:
            out.append(_make("SEPMExporterRootDown", Severity.WARNING, subject,
                             "root cannot be read; nothing in it can be checked until it returns"))
        entry = history.servers.get(name)
        first_seen = entry.seen_at if entry is not None else None
        # One finding per certificate, not per copy: server.crt and keystore.jks holding the same one are one row.
        copies: dict[tuple[str, float, str, int], list[str]] = {}
        leaves = {}
        for label, observed in server.certificates.items():
            if observed.facts is None:
                continue  # a file error: SEPMExporterFileErrors
            leaf = observed.facts.leaf
            same = (leaf.public_key_sha256, leaf.not_after, leaf.signature_hash, leaf.key_bits)
            copies.setdefault(same, []).append(label)
            leaves[same] = leaf
        for same, labels in copies.items():
            leaf = leaves[same]
            label = " and ".join(labels)
            left = leaf.not_after - now
            if left < 0:
                out.append(_make("SEPMServerCertificateExpired", Severity.CRITICAL, subject,
                                 f"{label} expired {duration(-left)} ago", leaf.not_after))
            elif left < EXPIRY_IMMINENT_DAYS * DAY:
                out.append(_make("SEPMServerCertificateExpiryImminent", Severity.CRITICAL, subject,
                                 f"{label} expires in {duration(left)}", leaf.not_after - EXPIRY_IMMINENT_DAYS * DAY))
            elif left < EXPIRY_SOON_DAYS * DAY:
                out.append(_make("SEPMServerCertificateExpiringSoon", Severity.WARNING, subject,
                                 f"{label} expires in {duration(left)}", leaf.not_after - EXPIRY_SOON_DAYS * DAY))
            verb = "are" if len(labels) > 1 else "is"
            if leaf.signature_hash in WEAK_HASHES:
                out.append(_make("SEPMServerCertificateWeakSignature", Severity.WARNING, subject,
                                 f"{label} {verb} signed with {leaf.signature_hash} ({leaf.key_bits}-bit "
                                 f"{leaf.key_algorithm}): a legacy key", first_seen))
            elif leaf.key_algorithm in ("rsa", "dsa") and leaf.key_bits < WEAK_KEY_BITS:
                out.append(_make("SEPMServerCertificateWeakKey", Severity.WARNING, subject,
                                 f"{label} {'have' if len(labels) > 1 else 'has'} a {leaf.key_bits}-bit "
                                 f"{leaf.key_algorithm} key", first_seen))
        window = windows.get(name)
        if (entry is None or entry.previous is None or entry.changed_at is None or window is None
                or now - entry.changed_at >= KEY_CHANGE_WINDOWS * window):
            continue
        ago = duration(now - entry.changed_at)
        clears = duration(entry.changed_at + KEY_CHANGE_WINDOWS * window - now)
        holding = rollout.get(name, 0)
        if not seen:
            out.append(_make("SEPMServerKeyChanged", Severity.CRITICAL, subject,
                             f"public key changed {ago} ago (the replaced key was signed with {entry.previous.signature_hash}) "
                             "and this exporter sees no client (no client file, no computer in SEPM's records): whether "
                             f"clients are stranded cannot be told here; clears {clears} from now, or when clients are seen",
                             entry.changed_at))
        elif holding < seen:
            out.append(_make("SEPMServerKeyChanged", Severity.WARNING, subject,
                             f"public key changed {ago} ago; its new key is in {holding} of the {plural(seen, 'client')} seen "
                             f"({holding / seen:.0%}); clears when every client embeds it, or {clears} from now",
                             entry.changed_at))
    return out


def _server_list(inventory: Inventory, server: str, group_id: str) -> tuple[tuple[str, ...], ...]:
    files = inventory.servers[server].groups.get(group_id)
    facts = files.sylink.facts if files is not None else None
    if facts is None:
        return ()
    return tuple((e.address, e.priority, "" if e.http_port is None else str(e.http_port)) for e in facts.servers)


def _group_findings(inventory: Inventory, history: History, derived: Derived, now: float) -> list[Finding]:
    out: list[Finding] = []
    windows = group_windows(inventory)
    server_window = server_windows(inventory)
    for (server, group_id), match in sorted(derived.key_match.items()):
        files = inventory.servers[server].groups.get(group_id)
        mtime = files.sylink.mtime if files is not None else None
        if match or mtime is None:
            continue
        window = windows.get(group_id)
        entry = history.servers.get(server)
        changed = entry.changed_at if entry is not None and entry.previous is not None else None
        if window is not None and now - mtime <= window:
            continue  # the server may still be rewriting its outbox
        if changed is not None and server in server_window and now - changed <= server_window[server]:
            continue
        out.append(_make("SEPMSyLinkServerKeyMismatch", Severity.CRITICAL, f"group {group_id} on {server}",
                         f"SyLink.xml on {server} does not embed {server}'s current key", max(mtime, changed or 0.0)))
    copies: dict[str, list[tuple[str, float]]] = {}
    for name, server_state in inventory.servers.items():
        for group_id, files in server_state.groups.items():
            if files.sylink.facts is not None and files.sylink.mtime is not None:
                copies.setdefault(group_id, []).append((name, files.sylink.mtime))
    for group_id, mismatch in sorted(derived.replica_mismatch.items()):
        window = windows.get(group_id)
        newest = max(m for _, m in copies.get(group_id, [("", 0.0)]))
        if not mismatch or window is None or now - newest <= window:
            continue
        lists = {name: _server_list(inventory, name, group_id) for name, _ in copies[group_id]}
        message = "replication partners disagree on SyLink.xml"
        if len(set(lists.values())) > 1:
            spelled = "; ".join(f"{name} lists " + (", ".join(f"{a} ({p})" for a, p, _ in entries) or "none")
                                for name, entries in lists.items())
            message += f": their server lists differ ({spelled})"
        out.append(_make("SEPMSyLinkReplicaMismatch", Severity.WARNING, group_subject(group_id), message, newest))
    return out


def _client_findings(inventory: Inventory, history: History, derived: Derived, now: float) -> list[Finding]:
    out: list[Finding] = []
    windows = group_windows(inventory)
    totals: dict[str, int] = {}
    for (group_id, _set, _state), count in derived.group_counts.items():
        totals[group_id] = totals.get(group_id, 0) + count
    stale: dict[tuple[str, str], list[tuple[str, float]]] = {}
    untrusted: dict[tuple[str, str], list[str]] = {}
    for client, verdict in sorted(derived.verdicts.items()):
        if client not in inventory.clients:
            continue
        window = windows.get(verdict.group_id)
        if verdict.stale_since is not None and window is not None and now - verdict.stale_since > window:
            stale.setdefault((verdict.group_id, verdict.group_set), []).append((client, verdict.stale_since))
        if verdict.trusted is False:
            untrusted.setdefault((verdict.group_id, verdict.group_set), []).append(client)
    for (group_id, group_set), held in sorted(stale.items()):
        share = len(held) / max(totals.get(group_id, 0), 1)
        shared = f" (a file shared by groups {group_set}: the file names no group)" if group_set else ""
        out.append(_make("SEPMClientSyLinkStale", Severity.WARNING, group_subject(group_id, group_set),
                         f"{plural(len(held), 'client')} ({share:.0%} of the group) {'holds' if len(held) == 1 else 'hold'} "
                         f"an older SyLink.xml{shared}",
                         min(s for _, s in held), tuple(c for c, _ in held)))
    changes = [h.changed_at for h in history.servers.values() if h.changed_at is not None and h.previous is not None]
    for (group_id, group_set), names in sorted(untrusted.items()):
        out.append(_make("SEPMClientServerKeyUntrusted", Severity.CRITICAL, group_subject(group_id, group_set),
                         f"{plural(len(names), 'client')} {'embeds' if len(names) == 1 else 'embed'} no current key of any server "
                         f"{'it lists: it cannot' if len(names) == 1 else 'they list: they cannot'} connect",
                         max(changes) if changes else None, tuple(names)))
    return out


def _file_findings(inventory: Inventory) -> list[Finding]:
    reasons: dict[str, list[str]] = {}
    for problem in failing(inventory):
        subject = f"file {problem.server or problem.client}:{problem.file}"
        if problem.reason not in reasons.setdefault(subject, []):
            reasons[subject].append(problem.reason)
    out = [_make("SEPMExporterFileErrors", Severity.WARNING, subject, ", ".join(found)) for subject, found in reasons.items()]
    for key, collection in inventory.collections.items():
        if not collection.root_up:
            out.append(_make("SEPMExporterRootDown", Severity.WARNING, f"client root {key}", "client folder cannot be read"))
    return out


def findings(inventory: Inventory, history: History, derived: Derived, now: float,
             plan: RenewalPlan | None = None) -> list[Finding]:
    """Every problem, worst first: exactly the alerts the shipped rules fire on the same facts.

    `plan` is the renewal plan of the same facts (its rollouts tell how far a new key has reached);
    made here when the caller has none.
    """
    plan = plan if plan is not None else renewal.plan_for(inventory, history, derived.verdicts)
    # Clients seen through either evidence, as the rules' sepm:clients_seen counts them.
    seen = sum(derived.group_counts.values()) + (sum(derived.api.counts.values()) if derived.api is not None else 0)
    rollout = {p.rollout.server: p.rollout.holding for p in plan.servers}
    out = (_server_findings(inventory, history, now, seen, rollout) + _group_findings(inventory, history, derived, now)
           + _client_findings(inventory, history, derived, now) + _file_findings(inventory))
    out += [with_verdict(f) for f in served.findings(inventory)]
    return sorted(out, key=lambda f: -f.severity)


def worst(found: list[Finding]) -> Severity:
    return max((f.severity for f in found), default=Severity.OK)
