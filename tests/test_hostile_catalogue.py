"""The hostile-input catalogue against a running exporter: each entry made by a lab step.

For every entry: the exporter keeps going, every other file's series stay exactly as they were,
`sepm_exporter_file_error` names the file with its reason, the log says so once across repeated
scans, and when the file is put back the error series goes and everything is as before. First in
process (every entry alone), then through a real `serve` process (entries in rounds, scrapes timed,
SIGTERM with the damage in place, convergence to a fresh one-shot scan).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import every_client, find, samples
from helpers import as_nobody, free_port, get, wait_for
from sepm_exporter.lab import estate, hostile
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm import layout
from sepm_exporter.sepm.layout import SERVER_CERTIFICATE
from sepm_exporter.settings.config import Config, load_config

CRT = "apache/conf/ssl/server.crt"  # the keystore (tomcat/etc/keystore.jks) is a certificate file too

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
CLIENT = "WS-0003"
CERT = "/".join(SERVER_CERTIFICATE)
KEYSTORE = "/".join(layout.KEYSTORE)


class Snapshot:
    """What a path held, to put back byte for byte (and mtime for mtime) when the test 'fixes' it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.stat = path.stat()

    def restore(self) -> None:
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        elif os.path.lexists(self.path):  # a file, a link, a FIFO: never opened, only removed
            self.path.unlink()
        self.path.write_bytes(self.data)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))


@dataclass(frozen=True)
class Case:
    """One catalogue entry: where it is written, what it does, which series belong to the damaged file."""

    name: str
    target: Callable[[estate.Lab], Path]
    damage: Callable[[estate.Lab, Path], object]
    error: dict[str, str]  # labels expected on sepm_exporter_file_error
    owns: Callable[[estate.Lab, str, dict[str, str]], bool]  # is this series the damaged file's


def client_file(lab: estate.Lab) -> Path:
    return lab.client_path(CLIENT)


def group_file(lab: estate.Lab) -> Path:
    return lab.sylink_path("SEPM2", lab.state.groups[0].group_id)


def certificate(lab: estate.Lab) -> Path:
    return lab.certificate_path("SEPM2")


def the_client(lab: estate.Lab, family: str, labels: dict[str, str]) -> bool:
    return labels.get("client") == CLIENT or family == "sepm_group_clients" or family.startswith("sepm_renewal_")


def the_certificate(lab: estate.Lab, family: str, labels: dict[str, str]) -> bool:
    """SEPM2's server.crt, and the keystore comparison that needs it."""
    return labels.get("server") == "SEPM2" and (labels.get("file") == CERT or family == "sepm_server_keystore_key_match")


def keystore(lab: estate.Lab) -> Path:
    return lab.keystore_path("SEPM2")


def the_keystore(lab: estate.Lab, family: str, labels: dict[str, str]) -> bool:
    return labels.get("server") == "SEPM2" and (labels.get("file") == KEYSTORE or family == "sepm_server_keystore_key_match")


def the_group_copy(lab: estate.Lab, family: str, labels: dict[str, str]) -> bool:
    """SEPM2's copy of the group, and the group's parity: with one readable copy there is nothing to compare."""
    group = labels.get("group_id") == lab.state.groups[0].group_id
    return group and (labels.get("server") == "SEPM2" or family == "sepm_sylink_replica_mismatch")


def write(kind: str) -> Callable[[estate.Lab, Path], object]:
    return lambda lab, path: lab.write_hostile(kind, path)


BYTE_CASES = [
    Case(kind, client_file, write(kind), {"client": CLIENT, "reason": reason}, the_client)
    for kind, reason in {**hostile.KINDS, **hostile.PARTIAL_KINDS}.items()
]
FS_CASES = [
    Case(kind, client_file, write(kind), {"client": CLIENT, "reason": reason}, the_client)
    for kind, reason in hostile.FS_KINDS.items()
    if kind != "unreadable"  # root reads anything: see test_unreadable_file_as_an_unprivileged_user
]
CERTIFICATE_CASES = [
    Case(f"certificate-{kind}", certificate, write(kind), {"server": "SEPM2", "file": CERT, "reason": reason},
         the_certificate)
    for kind, reason in (*hostile.CERTIFICATE_KINDS.items(), ("empty", "empty"), ("directory", "not_a_file"))
]
KEYSTORE_CASES = [
    Case(kind, keystore, write(kind), {"server": "SEPM2", "file": KEYSTORE, "reason": reason}, the_keystore)
    for kind, reason in (*hostile.KEYSTORE_KINDS.items(), ("empty", "empty"), ("directory", "not_a_file"))
]
GROUP_CASES = [
    Case(f"outbox-{kind}", group_file, write(kind), {"server": "SEPM2", "reason": reason}, the_group_copy)
    for kind, reason in (("billion-laughs", "entity_expansion"), ("truncated", "truncated_xml"),
                         ("external-entity", "external_entity"))
]
CASES = BYTE_CASES + FS_CASES + CERTIFICATE_CASES + KEYSTORE_CASES + GROUP_CASES


def series(exporter: Exporter) -> Series:
    return {k: v for k, v in samples(exporter.exposition).items() if not k[0].startswith("sepm_exporter_")}


def others(lab: estate.Lab, found: Series, owns: Callable[[estate.Lab, str, dict[str, str]], bool]) -> Series:
    return {k: v for k, v in found.items() if not owns(lab, k[0], dict(k[1]))}


@pytest.fixture
def running(lab: estate.Lab) -> Iterator[Exporter]:
    exporter = Exporter(every_client(load_config(lab.config_path)))
    exporter.full_scan()
    yield exporter


def problem_lines(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalogue_entry(case: Case, lab: estate.Lab, running: Exporter, caplog: pytest.LogCaptureFixture) -> None:
    before = series(running)
    path = case.target(lab)
    snapshot = Snapshot(path)
    caplog.set_level(logging.INFO, logger="sepm_exporter")

    case.damage(lab, path)
    running.full_scan()
    running.full_scan()
    damaged = running.exposition
    errors = find(damaged, "sepm_exporter_file_error", **case.error)
    assert len(errors) == 1, find(damaged, "sepm_exporter_file_error")
    assert others(lab, series(running), case.owns) == others(lab, before, case.owns), "another file's series moved"
    reported = [r for r in problem_lines(caplog, "file problem") if r.__dict__["reason"] == case.error["reason"]]
    assert len(reported) == 1, "said once, not once per scan"

    snapshot.restore()
    running.full_scan()
    assert find(running.exposition, "sepm_exporter_file_error") == []
    assert series(running) == before
    assert problem_lines(caplog, "file problem cleared")


@pytest.mark.parametrize("kind", hostile.VARIANTS)
def test_valid_re_encodings_change_only_the_raw_hash(kind: str, lab: estate.Lab, running: Exporter) -> None:
    """UTF-8 with BOM, UTF-16 LE/BE with BOM, CRLF: the same document, so the same canonical hash."""
    before, before_text = series(running), running.exposition
    lab.write_variant(kind, client_file(lab))
    running.full_scan()
    assert find(running.exposition, "sepm_exporter_file_error") == []
    ((old, _),) = find(before_text, "sepm_client_sylink_info", client=CLIENT)
    ((new, _),) = find(running.exposition, "sepm_client_sylink_info", client=CLIENT)
    assert old["canonical_sha256"] == new["canonical_sha256"] and old["sha256"] != new["sha256"]
    assert {k[0] for k in set(before) ^ set(series(running))} == {"sepm_client_sylink_info"}


def test_certificate_facts_that_are_valid_but_alarming(lab: estate.Lab, running: Exporter) -> None:
    """Expired, not yet valid, a 512-bit key, a bundle: facts, not errors; the alerts judge them."""
    now = running.clock()
    lab.renew("SEPM1", new_key=False, age_days=400, valid_days=365)
    lab.renew("SEPM2", new_key=False, age_days=-10, valid_days=365)
    lab.write_certificate_bundle("SEPM2")
    running.full_scan()
    text = running.exposition
    assert find(text, "sepm_exporter_file_error") == []
    assert find(text, "sepm_certificate_not_after_timestamp_seconds", server="SEPM1")[0][1] < now
    assert find(text, "sepm_certificate_not_before_timestamp_seconds", server="SEPM2")[0][1] > now
    assert find(text, "sepm_certificate_file_certificates", server="SEPM2", file=CRT)[0][1] == 2
    assert find(text, "sepm_server_key_changed_timestamp_seconds") == [], "same key, whatever the dates"
    lab.renew("SEPM1", new_key=True, bits=512)
    running.full_scan()
    (info,) = find(running.exposition, "sepm_certificate_info", server="SEPM1", file=CRT)
    assert info[0]["key_bits"] == "512"


def test_a_group_folder_that_is_not_a_group(lab: estate.Lab, running: Exporter) -> None:
    before = series(running)
    folder = lab.add_stray_folder("SEPM2", "Copy of group")
    running.full_scan()
    (error,) = find(running.exposition, "sepm_exporter_file_error", server="SEPM2")
    assert error[0]["reason"] == "bad_group_folder" and "Copy of group" in error[0]["file"]
    assert series(running) == before
    shutil.rmtree(folder)
    running.full_scan()
    assert find(running.exposition, "sepm_exporter_file_error") == []


@pytest.mark.parametrize("name", ["端末-東京-01", "Ünïcødé PC", 'quote"back\\slash', "new\nline"])
def test_client_folders_with_any_name(name: str, lab: estate.Lab, running: Exporter) -> None:
    lab.clone_client("WS-0001", name)
    running.full_scan()
    assert find(running.exposition, "sepm_exporter_file_error") == []
    (current,) = find(running.exposition, "sepm_client_sylink_current", client=name)
    assert current[1] == 1


def test_a_file_deleted_between_list_and_read(lab: estate.Lab, running: Exporter,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The race, made certain: the file is really deleted just before its read."""
    from sepm_exporter.sources import scanner

    path = client_file(lab)
    real = scanner.read_capped

    def deleting(target: str, limit: int, size_hint: int = -1) -> bytes:
        if Path(target) == path and path.exists():
            path.unlink()
        return real(target, limit, size_hint)

    monkeypatch.setattr(scanner, "read_capped", deleting)
    lab.write_variant("crlf", path)  # a change, so the scanner reads it again
    running.full_scan()
    errors = find(running.exposition, "sepm_exporter_file_error", client=CLIENT)
    assert [e[0]["reason"] for e in errors] == ["vanished"]
    assert find(running.exposition, "sepm_client_sylink_info", client=CLIENT) == []
    assert len(find(running.exposition, "sepm_client_sylink_info")) == len(lab.state.clients) - 1
    monkeypatch.undo()
    running.full_scan()  # gone for good: the client is forgotten, not reported forever
    assert find(running.exposition, "sepm_exporter_file_error") == []
    assert find(running.exposition, "sepm_client_sylink_info", client=CLIENT) == []


def test_a_certificate_renewed_behind_a_swapped_symlink(lab: estate.Lab, running: Exporter) -> None:
    """server.crt as a link to a versioned file; the renewal writes a new file and swaps the link."""
    path = lab.certificate_path("SEPM1")
    old = path.with_name("server-2015.crt")
    path.rename(old)
    path.symlink_to(old.name)
    running.full_scan()
    (before,) = find(running.exposition, "sepm_certificate_info", server="SEPM1", file=CRT)
    lab.renew("SEPM1", new_key=True)  # atomic_write replaces the link with a file...
    new = path.with_name("server-2026.crt")
    path.rename(new)
    swap = path.with_name(".server.crt.new")
    swap.symlink_to(new.name)
    os.replace(swap, path)  # ...which is then put back behind a link, swapped atomically
    running.full_scan()
    (after,) = find(running.exposition, "sepm_certificate_info", server="SEPM1", file=CRT)
    assert after[0]["public_key_sha256"] != before[0]["public_key_sha256"]
    assert after[0]["signature_hash"] == "sha256"


def test_unreadable_file_as_an_unprivileged_user() -> None:
    """chmod 000 means nothing to root; when the suite runs as root the scan runs as nobody in a child."""
    base = Path(tempfile.mkdtemp(prefix="sepm-perm-"))
    try:
        base.chmod(0o755)
        lab = estate.init(base / "lab", groups=2, clients=4)
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        config = load_config(lab.config_path)
        baseline = Exporter(every_client(config))
        baseline.full_scan()  # imports everything the child needs while still privileged
        lab.write_hostile("unreadable", client_file(lab))
        text = _scan_as_nobody(config) if os.geteuid() == 0 else _scan(config)
        (error,) = find(text, "sepm_exporter_file_error", client=CLIENT)
        assert error[0]["reason"] == "unreadable"
        assert len(find(text, "sepm_client_sylink_info")) == len(lab.state.clients) - 1
        assert find(text, "sepm_certificate_info", server="SEPM1")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _scan(config: Config) -> bytes:
    exporter = Exporter(every_client(config))
    exporter.full_scan()
    return exporter.exposition


def _scan_as_nobody(config: Config) -> bytes:
    return as_nobody(lambda: _scan(config))


def test_two_files_claiming_one_client_never_make_a_duplicate_series(lab: estate.Lab) -> None:
    """A second collection and a configured file both name WS-0001: one series, the others reported.

    Both extra copies have the same `file` label below their collection, so they share one error series.
    """
    second = lab.directory / "clients-branch"
    (second / "WS-0001").mkdir(parents=True)
    shutil.copy2(lab.client_path("WS-0002"), second / "WS-0001" / "SyLink.xml")
    text = lab.config_path.read_text(encoding="utf-8").replace(
        "clients:\n",
        f"clients:\n  - name: WS-0001\n    file: {json.dumps(str(lab.client_path('WS-0003')))}\n"
        f"  - collection: {json.dumps(str(second))}\n",
    )
    lab.config_path.write_text(text, encoding="utf-8")
    exporter = Exporter(every_client(load_config(lab.config_path)))
    exporter.full_scan()
    text_out = exporter.exposition  # `find` parses it with prometheus_client, which fails on a duplicate
    assert len(find(text_out, "sepm_client_sylink_info", client="WS-0001")) == 1
    reasons = [e[0]["reason"] for e in find(text_out, "sepm_exporter_file_error", client="WS-0001")]
    assert reasons == ["duplicate_client"]
    shutil.rmtree(second / "WS-0001")
    exporter.full_scan()  # the configured file still holds the name: the other collection's copy is still extra
    assert [e[0]["reason"] for e in find(exporter.exposition, "sepm_exporter_file_error", client="WS-0001")] == [
        "duplicate_client"]
    shutil.rmtree(lab.clients_root / "WS-0001")
    exporter.full_scan()
    assert find(exporter.exposition, "sepm_exporter_file_error", client="WS-0001") == []
    assert len(find(exporter.exposition, "sepm_client_sylink_info", client="WS-0001")) == 1

# -- the same catalogue through the full `serve` path ----------------------------------------------
#
# Each round damages several files at once (every client case on its own client, one server.crt
# case and one group-file case on SEPM2), then asserts for every case: exactly one file error with
# its reason, every other series unchanged, every scrape answered within 1 s while the damage is
# there; after the files are put back, /metrics equals a fresh one-shot scan. The last round leaves
# its damage in place (a FIFO among it) and SIGTERM must still end the process at once.

SCRAPE_BUDGET = 1.0

CLIENT_KINDS = {**hostile.KINDS, **hostile.PARTIAL_KINDS,
                **{k: v for k, v in hostile.FS_KINDS.items() if k != "unreadable"}}  # root reads anything
SERVE_CERTIFICATE_KINDS = {**hostile.CERTIFICATE_KINDS, "empty": "empty", "directory": "not_a_file", "fifo": "not_a_file",
                     "link-outside": "outside_root", "link-to-key": "outside_root"}
GROUP_KINDS = {"billion-laughs": "entity_expansion", "backtracking-entity": "entity_expansion",
               "many-attributes": "too_complex", "embedded-invalid-version": "bad_certificate",
               "huge-number": "bad_number", "fifo": "not_a_file", "link-outside": "outside_root"}


@dataclass(frozen=True)
class Damage:
    """One case in a round: the file, what is done to it, the error it must raise, the series it owns."""

    name: str
    path: Path
    kind: str
    error: dict[str, str]
    owns: Callable[[str, dict[str, str]], bool]


def _series(text: bytes) -> Series:
    """Every series but the exporter's own and the client aggregates (counts that every client moves)."""
    return {k: v for k, v in samples(text).items()
            if not k[0].startswith(("sepm_exporter_", "process_", "python_", "sepm_renewal_", "sepm_group_stale_file_"))
            and k[0] != "sepm_group_clients"}


def _others(found: Series, damages: list[Damage]) -> Series:
    return {k: v for k, v in found.items() if not any(d.owns(k[0], dict(k[1])) for d in damages)}


def _client(lab: estate.Lab, index: int, kind: str, reason: str) -> Damage:
    name = f"WS-{index:04d}"
    return Damage(f"client-{kind}", lab.client_path(name), kind, {"client": name, "reason": reason},
                  lambda family, labels: labels.get("client") == name)


def _certificate(lab: estate.Lab, kind: str, reason: str) -> Damage:
    return Damage(f"certificate-{kind}", lab.certificate_path("SEPM2"), kind,
                  {"server": "SEPM2", "file": CERT, "reason": reason},
                  lambda family, labels: labels.get("server") == "SEPM2" and (
                      labels.get("file") == CERT or family == "sepm_server_keystore_key_match"))  # compares with server.crt


def _group(lab: estate.Lab, index: int, kind: str, reason: str) -> Damage:
    group_id = lab.state.groups[index].group_id

    def owns(family: str, labels: dict[str, str]) -> bool:
        # SEPM2's copy, the group's parity, and (for a partial problem) the facts the copy still gives
        if labels.get("group_id") != group_id:
            return False
        return labels.get("server") == "SEPM2" or family == "sepm_sylink_replica_mismatch" or "client" in labels

    return Damage(f"group-{kind}", lab.sylink_path("SEPM2", group_id), kind,
                  {"server": "SEPM2", "file": lab.sylink_path("SEPM2", group_id).relative_to(
                      lab.server_root("SEPM2")).as_posix(), "reason": reason}, owns)


def _rounds(lab: estate.Lab) -> list[list[Damage]]:
    certificates = list(SERVE_CERTIFICATE_KINDS.items())
    groups = list(GROUP_KINDS.items())
    count = max(len(certificates), len(groups))
    rounds: list[list[Damage]] = []
    for index in range(count):
        damages = []
        if index < len(certificates):
            damages.append(_certificate(lab, *certificates[index]))
        if index < len(groups):
            damages.append(_group(lab, index % len(lab.state.groups), *groups[index]))
        rounds.append(damages)
    rounds[-1] += [_client(lab, i, kind, reason) for i, (kind, reason) in enumerate(CLIENT_KINDS.items(), start=1)]
    return rounds


@pytest.fixture
def big_lab(tmp_path: Path) -> estate.Lab:
    """Enough clients for every client case at once, plus untouched ones; enough groups for the group cases."""
    return estate.init(tmp_path / "lab", groups=len(GROUP_KINDS), clients=len(CLIENT_KINDS) + 4)


@pytest.fixture
def serving(big_lab: estate.Lab, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(big_lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--watch.debounce", "0.05",
         "--watch.reconcile-interval", "1", "--clients.series", "all"],
        stdout=log, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base + "/-/ready"), timeout=30)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def _timed_scrape(base: str) -> bytes:
    started = time.perf_counter()
    text = get(base + "/metrics", timeout=SCRAPE_BUDGET * 5)
    spent = time.perf_counter() - started
    assert spent < SCRAPE_BUDGET, f"a scrape took {spent:.2f} s"
    return text


def _errors_present(base: str, damages: list[Damage]) -> bytes | None:
    text = _timed_scrape(base)
    return text if all(find(text, "sepm_exporter_file_error", **d.error) for d in damages) else None


def _one_shot(config: Path) -> Series:
    exporter = Exporter(every_client(load_config(config)))
    exporter.full_scan()
    return _series(exporter.exposition)


def _converged(base: str, config: Path) -> bool:
    text = _timed_scrape(base)
    return not find(text, "sepm_exporter_file_error") and _series(text) == _one_shot(config)


def test_catalogue_through_serve(big_lab: estate.Lab, serving: tuple[subprocess.Popen[bytes], str]) -> None:
    process, base = serving
    before = _series(get(base + "/metrics"))
    assert before == _one_shot(big_lab.config_path)
    rounds = _rounds(big_lab)
    for number, damages in enumerate(rounds, start=1):
        snapshots = [Snapshot(d.path) for d in damages]
        for damage in damages:
            big_lab.write_hostile(damage.kind, damage.path)
        text = wait_for(lambda damages=damages: _errors_present(base, damages), timeout=15)
        for damage in damages:
            errors = find(text, "sepm_exporter_file_error", **damage.error)
            assert len(errors) == 1, (damage.name, find(text, "sepm_exporter_file_error"))
        assert _others(_series(text), damages) == _others(before, damages), f"round {number}: another series moved"
        for _ in range(3):
            _timed_scrape(base)
        assert get(base + "/").startswith(b"<!DOCTYPE html>")
        if number == len(rounds):
            break
        for snapshot in snapshots:
            snapshot.restore()
        wait_for(lambda: _converged(base, big_lab.config_path) or None, timeout=15)
    # The last round's damage (a FIFO, links, floods) is still there: SIGTERM must end the process now.
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5


def test_last_round_clears_to_a_fresh_scan(big_lab: estate.Lab,
                                           serving: tuple[subprocess.Popen[bytes], str]) -> None:
    """The client cases, put back: the running exporter ends equal to a fresh one-shot scan."""
    _, base = serving
    damages = _rounds(big_lab)[-1]
    snapshots = [Snapshot(d.path) for d in damages]
    for damage in damages:
        big_lab.write_hostile(damage.kind, damage.path)
    wait_for(lambda: _errors_present(base, damages), timeout=15)
    for snapshot in snapshots:
        snapshot.restore()
    wait_for(lambda: _converged(base, big_lab.config_path) or None, timeout=15)


def test_folders_that_are_links_or_not_utf8(big_lab: estate.Lab,
                                            serving: tuple[subprocess.Popen[bytes], str]) -> None:
    """A client folder linked out of the share is reported, not published; two folder names that are
    not UTF-8 stay two clients (no duplicate series) and the landing page still renders."""
    _, base = serving
    folder = big_lab.link_client_folder_outside("WS-0002")
    root = os.fsencode(big_lab.clients_root)
    for raw in (b"bad\xffutf8", b"bad\xfeutf8"):
        os.mkdir(root + b"/" + raw)
        shutil.copy2(big_lab.client_path("WS-0003"), os.fsdecode(root + b"/" + raw + b"/SyLink.xml"))

    def seen() -> bytes | None:
        text = _timed_scrape(base)
        linked = find(text, "sepm_exporter_file_error", client="WS-0002", reason="outside_root")
        return text if linked and len(find(text, "sepm_client_sylink_info", client="bad\\xffutf8")) == 1 else None

    text = wait_for(seen, timeout=15)
    assert find(text, "sepm_client_sylink_info", client="WS-0002") == []
    assert len(find(text, "sepm_client_sylink_info", client="bad\\xfeutf8")) == 1
    lines = [line for line in text.splitlines() if line and not line.startswith(b"#")]
    assert len(lines) == len(set(lines)), "a duplicate series"
    page = get(base + "/")
    assert page.startswith(b"<!DOCTYPE html>")
    folder.unlink()
    for raw in (b"bad\xffutf8", b"bad\xfeutf8"):
        shutil.rmtree(os.fsdecode(root + b"/" + raw))


def test_fifos_at_start_and_in_poll_mode_never_freeze_serve(lab: estate.Lab, tmp_path: Path) -> None:
    """A FIFO at start kept /-/ready at 503 for good; one added in poll mode froze /metrics; SIGINT was ignored."""
    lab.write_hostile("fifo", lab.client_path("WS-0001"))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--watch.mode", "poll", "--watch.poll-interval", "0.2",
         "--clients.series", "all"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base + "/-/ready"), timeout=30)
        assert find(_timed_scrape(base), "sepm_exporter_file_error", client="WS-0001", reason="not_a_file")
        lab.write_hostile("fifo", lab.client_path("WS-0002"))
        wait_for(lambda: find(_timed_scrape(base), "sepm_exporter_file_error", client="WS-0002",
                              reason="not_a_file") or None, timeout=15)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) in (0, -signal.SIGINT, 130)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
