"""The incident, replayed step by step, with every surface held to a truth the test works out from the files.

Timeline: healthy (years on SHA-1), a keep-key renewal nobody has pulled yet, one partner's drift,
a new-key renewal of both servers (their outboxes not rewritten yet), SEPM1's outbox rewritten but
not yet replicated, half the clients pulled, all pulled. At each step the truth is computed here,
independently of the exporter: the keys in each server.crt, the keys each client's SyLink.xml
embeds (read with the standard library and `cryptography`), which clients therefore trust no
current key, which outbox copies would fix them, which clients lag their group's newest file.
Then, on a real Prometheus with the shipped rules, the firing alerts and severities, `check`'s exit
code, every machine output (`--format json`, `--stranded --format csv|json`, `--renewal --format
json`, each parsed as the one document on stdout), the landing page's verdict and the fix file it
names must all agree with that truth, and with each other (pager == `check` == page).

Lab heartbeats are 3 s (a 4.5 s window). What depends on the clock, not on the files (a key
change holds three windows; an outbox or a partner may lag a window), is allowed, never required.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from e2e.test_agreement import Estate, Key
from helpers import get, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.settings.config import load_config

pytestmark = pytest.mark.e2e
GRACE = 4.5  # (heartbeat 3 s + randomization 0) x 1.5


def key_of(certificate: x509.Certificate) -> str:
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def embedded_keys(path: Path) -> set[str]:
    """The public keys a SyLink.xml embeds (ServerCertList), read without the exporter's parser."""
    out = set()
    for element in ET.fromstring(path.read_bytes()).iter("Certificate"):
        der = base64.b64decode("".join((element.text or "").split()))
        out.add(key_of(x509.load_der_x509_certificate(der)))
    return out


@dataclass
class Truth:
    """What the files say, worked out here."""

    current: dict[str, str]  # server -> key of its server.crt
    untrusted: dict[str, set[str]] = field(default_factory=dict)  # group -> clients embedding no current key
    lagging: dict[str, set[str]] = field(default_factory=dict)  # group -> clients not holding its newest file
    fixes: dict[str, set[str]] = field(default_factory=dict)  # group -> outbox copies that embed a current key
    weak: dict[str, str] = field(default_factory=dict)  # server -> SEPMServerCertificateWeakSignature / WeakKey
    outbox_lacks_key: set[tuple[str, str]] = field(default_factory=set)  # (server, group)
    partners_differ: set[str] = field(default_factory=set)

    @property
    def critical(self) -> bool:
        return any(self.untrusted.values())

    @property
    def stranded_count(self) -> int:
        return sum(len(c) for c in self.untrusted.values())


def truth_of(lab: estate.Lab) -> Truth:
    servers = [s.name for s in lab.state.servers]
    certificates = {s: x509.load_pem_x509_certificate(lab.certificate_path(s).read_bytes()) for s in servers}
    truth = Truth({s: key_of(c) for s, c in certificates.items()})
    for server, certificate in certificates.items():
        algorithm = certificate.signature_hash_algorithm
        if isinstance(algorithm, hashes.SHA1):
            truth.weak[server] = "SEPMServerCertificateWeakSignature"
        elif certificate.public_key().key_size < 2048:  # type: ignore[union-attr]
            truth.weak[server] = "SEPMServerCertificateWeakKey"
    current = set(truth.current.values())
    for group in lab.state.groups:
        copies = {s: lab.sylink_path(s, group.group_id) for s in servers}
        truth.fixes[group.group_id] = {str(p) for p in copies.values() if embedded_keys(p) & current}
        truth.outbox_lacks_key |= {(s, group.group_id) for s, p in copies.items() if truth.current[s] not in embedded_keys(p)}
        if len({p.read_bytes() for p in copies.values()}) > 1:
            truth.partners_differ.add(group.group_id)
        newest = max(copies.values(), key=lambda p: p.stat().st_mtime).read_bytes()
        members = [c for c, g in lab.state.clients.items() if g == group.group_id]
        truth.untrusted[group.group_id] = {c for c in members if not embedded_keys(lab.client_path(c)) & current}
        truth.lagging[group.group_id] = {c for c in members if lab.client_path(c).read_bytes() != newest}
    return truth


def required(truth: Truth, stale_settled: bool) -> set[Key]:
    """What must fire whatever the clock: stranded groups, weak certificates, and settled lagging groups."""
    out: set[Key] = {("SEPMClientServerKeyUntrusted", "critical", f"group {g}") for g, c in truth.untrusted.items() if c}
    out |= {(alert, "warning", f"server {s}") for s, alert in truth.weak.items()}
    if stale_settled:
        out |= {("SEPMClientSyLinkStale", "warning", f"group {g}") for g, c in truth.lagging.items() if c}
    return out


def allowed(truth: Truth) -> set[Key]:
    """What may also fire, depending on how long ago the step was: never a critical the files do not justify."""
    out = {("SEPMServerKeyChanged", "warning", f"server {s}") for s in truth.current}
    out |= {("SEPMClientSyLinkStale", "warning", f"group {g}") for g, c in truth.lagging.items() if c}
    out |= {("SEPMSyLinkReplicaMismatch", "warning", f"group {g}") for g in truth.partners_differ}
    out |= {("SEPMSyLinkServerKeyMismatch", "critical", f"group {g} on {s}") for s, g in truth.outbox_lacks_key}
    return out


class Replay(Estate):
    """The lab, its serving exporter (web server and watcher in this process) and a real Prometheus:
    the agreement test's estate, two groups of three clients, the default series mode."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, groups=2, clients=6, identical=False, series="problems")

    def page(self) -> tuple[set[Key], str, str]:
        """The findings the page renders, its banner's verdict, and its HTML."""
        html = get(f"http://127.0.0.1:{self.port}/").decode()
        verdict = re.search(r'id="banner" data-state="([a-z]+)"', html)
        assert verdict is not None
        found = {(f.alert, f.severity.name.lower(), f.subject) for f in self.served.report().findings}
        return found, verdict.group(1), html

    def check_config(self) -> Path:
        """The lab's config on a copy of the serving exporter's state file: `check` must not write it."""
        state = self.folder / "check-state.json"
        config = load_config(self.lab.config_path)
        if config.state_file is not None and config.state_file.exists():
            shutil.copyfile(config.state_file, state)
        path = self.folder / "check.yml"
        text = self.lab.config_path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"^state_file: .*$", f"state_file: {json.dumps(str(state))}", text, flags=re.M), encoding="utf-8")
        return path

    def check(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sepm_exporter", "check", "--config", str(self.check_config()), *args],
                              capture_output=True, text=True, timeout=120)

    def checked(self) -> set[Key]:
        """`check --format json`'s findings."""
        document = json.loads(self.check("--format", "json").stdout)
        return {(f["alert"], f["severity"], f["subject"]) for f in document["findings"]}

    def settle(self, step: str, truth: Truth, stale_settled: bool, timeout: float = 60) -> set[Key]:
        """Until pager, `check` and page say the same, everything required fires and nothing unjustified."""
        must, may = required(truth, stale_settled), allowed(truth)
        started = time.monotonic()
        while True:
            firing, (page, _, _) = self.firing(), self.page()
            found = self.checked() if firing == page else set()
            if firing == found == page and must <= firing <= must | may:
                self.log.append(f"{step}: agreed after {time.monotonic() - started:.1f} s on {sorted(firing)}")
                return firing
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{step}: firing {sorted(firing)}; must {sorted(must - firing)}; "
                                     f"unjustified {sorted(firing - must - may)}; page differs by {sorted(page ^ firing)}")
            time.sleep(0.3)

    def assert_surfaces(self, step: str, truth: Truth) -> None:
        """Every output a tool or a person reads, against the truth of this step."""
        critical = truth.critical
        text = self.check()
        assert text.returncode == (2 if critical else 0), f"{step}: check exits {text.returncode}\n{text.stdout}"
        if critical:
            assert "(safe)" not in text.stdout and "strands no client" not in text.stdout, f"{step}: safe in an outage"
        document = json.loads(self.check("--format", "json").stdout)  # the whole of stdout is one document
        assert (document["status"] == "critical") == critical, step
        assert document["renewal_plan"]["already_stranded"] == truth.stranded_count, step
        for server in document["renewal_plan"]["servers"]:
            assert (server["status"] == "outage") == critical, (step, server)
        as_csv = self.check("--stranded", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
        as_json = json.loads(self.check("--stranded", "--format", "json").stdout)
        assert [dict(r) for r in rows] == as_json, f"{step}: CSV and JSON list the same clients"
        untrusted = {c for clients in truth.untrusted.values() for c in clients}
        assert {r["client"] for r in rows if r["status"] == "untrusted"} == untrusted, step
        assert {r["client"] for r in rows} <= untrusted | {c for clients in truth.lagging.values() for c in clients}, step
        names = {g.group_id: g.name for g in self.lab.state.groups}
        for row in rows:
            fixes = truth.fixes[row["group_id"]]
            assert row["group_name"] == names[row["group_id"]], row
            if fixes:
                assert row["group_file"] in fixes and not row["note"], f"{step}: {row} names a file that fixes nothing"
            else:
                assert row["group_file"] == "" and "wait for SEPM to rewrite the outbox" in row["note"], (step, row)
        renewal = self.check("--renewal", "SEPM1", "--format", "json")
        what_if = json.loads(renewal.stdout)["renewal_what_if"]
        assert what_if["already_stranded"] == truth.stranded_count, step
        assert (what_if["status"] == "outage") == critical, step
        assert renewal.returncode == (2 if critical or what_if["stranded"] else 0), step
        _, verdict, html = self.page()
        assert (verdict == "critical") == critical, f"{step}: the page says {verdict}"
        for group, clients in truth.untrusted.items():
            if not clients:
                continue
            row = html[html.index(group):]
            row = row[:row.index("</tr>")]
            fixes = truth.fixes[group]
            if fixes:
                assert any(f"<code>{path}</code>" in row for path in fixes), f"{step}: the page's fix for {group}"
            else:
                assert "No file to import yet" in row and "<code>" + str(self.lab.sylink_path("SEPM1", group)) not in row



def test_every_surface_tells_the_truth_at_every_step_of_the_incident(tmp_path: Path) -> None:
    replay = Replay(tmp_path)
    lab = replay.lab
    first = lab.state.groups[0].group_id

    def step(name: str, stale_settled: bool = False) -> set[Key]:
        truth = truth_of(lab)
        firing = replay.settle(name, truth, stale_settled)
        replay.assert_surfaces(name, truth)
        return firing

    try:
        healthy = step("healthy: years on SHA-1")
        assert {k[1] for k in healthy} == {"warning"}

        lab.renew("SEPM1", new_key=False)
        lab.renew("SEPM2", new_key=False)
        lab.publish("SEPM1")
        lab.replicate("SEPM1", "SEPM2")
        time.sleep(GRACE)  # past the window: every client lags, every one still trusts the (same) key
        keep = step("keep-key renewal, nobody pulled yet", stale_settled=True)
        assert {k for k in keep if k[0] == "SEPMClientSyLinkStale"} and "critical" not in {k[1] for k in keep}
        lab.pull(1.0)
        step("keep-key: every client pulled")

        lab.drift("SEPM2", first, heartbeat_seconds=2)
        time.sleep(GRACE)
        drift = step("one partner drifts", stale_settled=True)
        assert ("SEPMSyLinkReplicaMismatch", "warning", f"group {first}") in drift and "critical" not in {k[1] for k in drift}
        lab.replicate("SEPM1", "SEPM2")
        step("replication repairs the drift")

        lab.renew("SEPM1", new_key=True)
        lab.renew("SEPM2", new_key=True)
        outage = step("new-key renewal of both: outboxes not yet rewritten")
        assert not truth_of(lab).fixes[first], "no outbox copy embeds a current key yet"
        assert not {k for k in outage if k[0] == "SEPMServerKeyChanged" and k[1] == "critical"}, "clients are seen"

        lab.publish("SEPM1")
        step("SEPM1's outbox rewritten, SEPM2's not yet")
        lab.replicate("SEPM1", "SEPM2")
        lab.pull(0.5)
        step("half the clients pulled")
        lab.pull(1.0)
        recovered = step("every client pulled")
        assert not {k for k in recovered if k[1] == "critical"}, "full recovery: nothing pages"
        wait_for(lambda: not replay.firing(), timeout=30)  # the rollout is complete: the key changes clear too
        assert replay.page()[1] == "ok" and replay.check().returncode == 0
    finally:
        replay.close()
        print("\n".join(replay.log))
