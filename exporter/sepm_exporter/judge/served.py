"""What clients are served against what is on disk: Tomcat's keystore and the live TLS probes.

Pure verdicts; the metrics, `check` and the landing page all read them from here.
"""

from __future__ import annotations

from sepm_exporter.judge.finding import Finding, Severity
from sepm_exporter.sepm import layout
from sepm_exporter.sources.inventory import Inventory
from sepm_exporter.sources.probes import ProbeResult

KEYSTORE_LABEL = "/".join(layout.KEYSTORE)
RESTART = ("restart the 'Symantec Endpoint Protection Manager' and 'Symantec Endpoint Protection Manager "
           "Webserver' services so they load the certificate on disk")


def disk_keys(inventory: Inventory) -> dict[str, str]:
    """Each server's current key on disk: the public key SHA-256 of its readable server.crt."""
    out: dict[str, str] = {}
    for name, server in inventory.servers.items():
        observed = server.server_certificate
        if observed is not None and observed.facts is not None:
            out[name] = observed.facts.leaf.public_key_sha256
    return out


def keystore_key_match(inventory: Inventory) -> dict[str, bool]:
    """Per server with both files readable: whether the keystore's leaf key is server.crt's key."""
    out: dict[str, bool] = {}
    for name, server in inventory.servers.items():
        keystore = server.certificates.get(KEYSTORE_LABEL)
        certificate = server.server_certificate
        if keystore is None or keystore.facts is None or certificate is None or certificate.facts is None:
            continue
        out[name] = keystore.facts.leaf.public_key_sha256 == certificate.facts.leaf.public_key_sha256
    return out


def served_key_match(result: ProbeResult, keys: dict[str, str]) -> bool | None:
    """None when there is nothing to compare: the probe failed, or the server's key on disk is unknown."""
    disk = keys.get(result.server)
    if result.leaf is None or disk is None:
        return None
    return result.leaf.public_key_sha256 == disk


def findings(inventory: Inventory) -> list[Finding]:
    """The keystore findings, from the files alone (the one-line hook of `judge.findings.findings`)."""
    return [
        Finding(Severity.WARNING, f"server {name}",
                "tomcat/etc/keystore.jks holds another key than apache/conf/ssl/server.crt: Tomcat (8443, 8446) "
                "serves a different certificate than Apache (443)",
                alert="SEPMKeystoreKeyMismatch",
                fix="re-import the certificate and key into the keystore (Broadcom KB 158445), then " + RESTART)
        for name, match in sorted(keystore_key_match(inventory).items()) if not match
    ]


def probe_findings(results: list[ProbeResult], inventory: Inventory) -> list[Finding]:
    """What a probe round says: endpoints down, served keys that are not the key on disk, failed validation."""
    keys = disk_keys(inventory)
    out: list[Finding] = []
    for result in sorted(results, key=lambda r: (r.server, r.endpoint)):
        subject = f"server {result.server}"
        if not result.up:
            out.append(Finding(Severity.WARNING, subject, f"TLS probe of {result.endpoint} failed: {result.reason}",
                               alert="SEPMProbeDown"))
            continue
        if served_key_match(result, keys) is False:
            out.append(Finding(Severity.CRITICAL, subject,
                               f"{result.endpoint} serves another key than server.crt on disk: the service was not "
                               "restarted after the renewal, or Apache and Tomcat disagree",
                               alert="SEPMServedCertificateMismatch", fix=RESTART))
        if result.verified is False:
            out.append(Finding(Severity.WARNING, subject,
                               f"{result.endpoint} serves a certificate its ca_file does not validate"))
    return out
