"""What to do about each finding, and which clients need which file: pure data for `check` and the landing page.

The KB's remedy for stranded clients is to import the current SyLink.xml of their group on each
of them (SylinkDrop). `stranded` lists them with the outbox file to import, so a deployment tool
can be fed from `check --stranded`. `rows` groups per-client findings into one row per subject the
on-call acts on (a group, a server, a file), whether findings arrive per client or already grouped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sepm_exporter.judge.clients import ClientVerdict
from sepm_exporter.judge.findings import Finding, Severity
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import current_server_keys, group_copies, group_names
from sepm_exporter.sources.inventory import Inventory

RUNBOOK_DIR = "docs/runbooks"

# The shipped alert each kind of finding mirrors, told from its message while findings do not name it.
_ALERT_BY_MESSAGE: tuple[tuple[str, str], ...] = (
    ("root cannot be read", "SEPMExporterRootDown"),
    ("collection cannot be read", "SEPMExporterRootDown"),
    ("no readable server certificate", "SEPMExporterFileErrors"),
    ("certificate expired", "SEPMServerCertificateExpired"),
    ("public key changed", "SEPMServerKeyChanged"),
    ("does not embed", "SEPMSyLinkServerKeyMismatch"),
    ("replication partners disagree", "SEPMSyLinkReplicaMismatch"),
    ("embeds no current server key", "SEPMClientServerKeyUntrusted"),
    ("older SyLink.xml", "SEPMClientSyLinkStale"),
    ("matches no group file", "SEPMClientSyLinkStale"),
    ("signed with", "SEPMServerCertificateWeakSignature"),
    ("-bit", "SEPMServerCertificateWeakKey"),
)

FIXES: dict[str, str] = {
    "SEPMClientServerKeyUntrusted": (
        "Import the current SyLink.xml of each client's group on it (SylinkDrop.exe -silent <group file>), or put "
        "the server's previous certificate and key back (keep-key route) until every client has the new file. "
        "Every client with its file: sepm-exporter check --stranded --format csv."),
    "SEPMClientSyLinkStale": (
        "Let the clients pull the group's current file (a heartbeat), or import it on them with SylinkDrop; "
        "if the server key changed, replicate first so every partner serves the same file."),
    "SEPMSyLinkServerKeyMismatch": (
        "Let the server rewrite its outbox (it does after a certificate change), then replicate to its partners."),
    "SEPMSyLinkReplicaMismatch": (
        "Run replication between the partners (Admin > Servers > Replicate Now) so both serve the same group file."),
    "SEPMServerKeyChanged": (
        "Check that every group file embeds the new key and that clients pull it; if clients are stranded, "
        "import the group file on them or restore the previous certificate and key."),
    "SEPMServerCertificateWeakSignature": (
        "Renew the certificate WITHOUT generating a new key (the clients keep trusting the key they know); "
        "a new key needs every client's SyLink.xml redistributed first."),
    "SEPMServerCertificateWeakKey": (
        "Redistribute SyLink.xml to every client first, then renew with a new 2048-bit key."),
    "SEPMServerCertificateExpired": "Renew the certificate WITHOUT generating a new key, then restart the SEPM web service.",
    "SEPMServerCertificateExpiryImminent": "Renew the certificate WITHOUT generating a new key.",
    "SEPMServerCertificateExpiringSoon": "Plan the renewal WITHOUT generating a new key.",
    "SEPMExporterRootDown": "Mount or share the folder again, or correct its path in the config.",
    "SEPMExporterFileErrors": "Read the reason; the file is refused until it is whole and well-formed again.",
}


def alert_of(finding: Finding) -> str:
    """The alert rule a finding mirrors: its own `alert`, or the one its message tells."""
    if finding.alert:
        return finding.alert
    if finding.subject.startswith("file "):
        return "SEPMExporterFileErrors"
    if "expires in" in finding.message:
        return "SEPMServerCertificateExpiryImminent" if finding.severity >= Severity.CRITICAL else "SEPMServerCertificateExpiringSoon"
    for fragment, alert in _ALERT_BY_MESSAGE:
        if fragment in finding.message:
            return alert
    return ""


def runbook(alert: str) -> str:
    """The runbook's path in the repository ("" when the finding mirrors no alert)."""
    return f"{RUNBOOK_DIR}/{alert}.md" if alert else ""


def fix_of(finding: Finding) -> str:
    return finding.fix or FIXES.get(alert_of(finding), "")


NO_FILE_YET = ("no copy of this group's file embeds a current server key yet (the outbox was not rewritten after "
               "the key change), so importing it fixes nothing: wait for SEPM to rewrite the outbox (restart the SEPM "
               "service if it has not within a heartbeat) and replicate, or restore the old key")
NO_GROUP = "the client's file matches no group file: export its group's communication settings from the console"


@dataclass(frozen=True)
class StrandedClient:
    """A client that cannot connect or holds an old file, and the group file to import on it."""

    client: str
    group_id: str  # "" when the client's file matches no known group
    status: str  # untrusted, stale or unmatched
    since: float | None
    server: str  # the partner whose outbox holds the file to import
    group_file: str  # that file's path as the exporter reads it: only a file that embeds a current key, else ""
    group_name: str = ""  # the group's name (PreferredGroup), where its file gives one
    note: str = ""  # why there is no file to import, and what to do instead ("" when group_file is set)
    evidence: str = "file"  # file: its own SyLink.xml was read; api: SEPM's records alone
    rule: str = ""  # api: which rule gave its key set (judge/keysets.py)
    reason: str = ""  # api, unknown: why its record cannot tell


def fix_sources(inventory: Inventory, keys: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Group -> (server, path) of its newest copy that embeds a current key of a watched server.

    A group whose copies embed none has no entry: pointing a stranded client at such a file fixes nothing.
    """
    current = frozenset(keys.values())
    sources: dict[str, tuple[str, str]] = {}
    for group_id, held in group_copies(inventory).items():
        for copy in sorted(held, key=lambda c: -c.mtime):
            if copy.facts.key_digests & current:
                sources[group_id] = (copy.server, inventory.servers[copy.server].groups[group_id].sylink.path)
                break
    return sources


def import_files(inventory: Inventory, history: History | None = None) -> dict[str, tuple[str, str]]:
    """Group -> (server, path) of the file a stranded client of it should import (`fix_sources`)."""
    remembered = {n: h.current.public_key_sha256 for n, h in history.servers.items() if h.current} if history else None
    return fix_sources(inventory, current_server_keys(inventory, remembered))


def file_note(inventory: Inventory, group_id: str, path: str) -> str:
    """Why a stranded client has no file to import ("" when it has one)."""
    return "" if path else NO_FILE_YET if group_id in group_copies(inventory) else NO_GROUP


def stranded(inventory: Inventory, verdicts: dict[str, ClientVerdict], history: History | None = None) -> list[StrandedClient]:
    """Every client not holding its group's current, trusted file, sorted by group then name."""
    sources = import_files(inventory, history)
    copies = group_copies(inventory)
    names = group_names(copies)
    out = []
    for client, verdict in verdicts.items():
        if verdict.trusted is not False and verdict.current is not False and verdict.current is not None:
            continue
        server, path = sources.get(verdict.group_id, ("", ""))
        note = "" if path else NO_FILE_YET if verdict.group_id in copies else NO_GROUP
        out.append(StrandedClient(client, verdict.group_id, verdict.status.value, verdict.stale_since, server, path,
                                  names.get(verdict.group_id, ""), note))
    return sorted(out, key=lambda s: (s.group_id, s.client))


@dataclass(frozen=True)
class Row:
    """One problem, per subject the on-call acts on, with the clients it affects."""

    severity: Severity
    alert: str
    subject: str
    message: str
    since: float | None
    clients: tuple[str, ...]
    fix: str

    @property
    def runbook(self) -> str:
        return runbook(self.alert)


_LEAD_DAYS = {"SEPMServerCertificateExpiringSoon": 30.0, "SEPMServerCertificateExpiryImminent": 7.0,
              "SEPMServerCertificateExpired": 0.0}


def _server_since(alert: str, server: str, inventory: Inventory | None, history: History) -> float | None:
    """When a server's condition began, where the facts tell: the key change, the certificate's dates."""
    entry = history.servers.get(server)
    if alert == "SEPMServerKeyChanged":
        return entry.changed_at if entry is not None else None
    state = inventory.servers.get(server) if inventory is not None else None
    observed = state.server_certificate if state is not None else None
    leaf = observed.facts.leaf if observed is not None and observed.facts is not None else None
    if leaf is None:
        return None
    if alert in ("SEPMServerCertificateWeakSignature", "SEPMServerCertificateWeakKey"):
        return entry.seen_at if entry is not None else None  # when it was seen, not when it was issued
    if alert in _LEAD_DAYS:
        return leaf.not_after - _LEAD_DAYS[alert] * 86400.0
    return None


def rows(found: Iterable[Finding], history: History, inventory: Inventory | None = None) -> list[Row]:
    """Findings as rows: failing client files fold into one row per reason; the others pass through.

    Worst first, then by the number of clients affected, then by subject. A server finding without
    `since` gets the time its facts tell (the key change, the certificate's dates).
    """
    out: list[Row] = []
    folded: dict[tuple[Severity, str, str, str], list[str]] = {}
    since: dict[tuple[Severity, str, str, str], float | None] = {}
    for finding in found:
        alert = alert_of(finding)
        owner = finding.subject[len("file "):].partition(":")[0] if finding.subject.startswith("file ") else ""
        if owner and inventory is not None and owner not in inventory.servers and not finding.clients:
            key = (finding.severity, alert, "client files", finding.message)  # one row per reason, not per client
            folded.setdefault(key, []).append(owner)
            since.setdefault(key, finding.since)
            continue
        began = finding.since
        if began is None and finding.subject.startswith("server "):
            began = _server_since(alert, finding.subject[len("server "):], inventory, history)
        out.append(Row(finding.severity, alert, finding.subject, finding.message, began, finding.clients, fix_of(finding)))
    for (severity, alert, subject, message), clients in folded.items():
        fix = FIXES.get(alert, "")
        out.append(Row(severity, alert, subject, message, since[(severity, alert, subject, message)], tuple(sorted(clients)), fix))
    return sorted(out, key=lambda r: (-r.severity, -len(r.clients), r.subject, r.message))
