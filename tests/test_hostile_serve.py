"""The hostile catalogue through the full `serve` path: a real process, real files, real scrapes.

Each round damages several files at once (every client case on its own client, one server.crt case
and one group-file case on SEPM2), then asserts for every case: exactly one file error with its
reason, every other series unchanged, every scrape answered within 1 s while the damage is there;
after the files are put back, /metrics equals a fresh one-shot scan. The last round leaves its
damage in place (a FIFO among it) and SIGTERM must still end the process at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import find, samples
from helpers import free_port, get, wait_for
from sepm_exporter.lab import estate, hostile
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm.layout import SERVER_CERTIFICATE
from sepm_exporter.settings.config import load_config
from test_hostile_catalogue import Snapshot

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
CERT = "/".join(SERVER_CERTIFICATE)
SCRAPE_BUDGET = 1.0

CLIENT_KINDS = {**hostile.KINDS, **hostile.PARTIAL_KINDS,
                **{k: v for k, v in hostile.FS_KINDS.items() if k != "unreadable"}}  # root reads anything
CERTIFICATE_KINDS = {**hostile.CERTIFICATE_KINDS, "empty": "empty", "directory": "not_a_file", "fifo": "not_a_file",
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
    return {k: v for k, v in samples(text).items()
            if not k[0].startswith(("sepm_exporter_", "process_", "python_")) and k[0] != "sepm_group_clients"}


def _others(found: Series, damages: list[Damage]) -> Series:
    return {k: v for k, v in found.items() if not any(d.owns(k[0], dict(k[1])) for d in damages)}


def _client(lab: estate.Lab, index: int, kind: str, reason: str) -> Damage:
    name = f"WS-{index:04d}"
    return Damage(f"client-{kind}", lab.client_path(name), kind, {"client": name, "reason": reason},
                  lambda family, labels: labels.get("client") == name)


def _certificate(lab: estate.Lab, kind: str, reason: str) -> Damage:
    return Damage(f"certificate-{kind}", lab.certificate_path("SEPM2"), kind,
                  {"server": "SEPM2", "file": CERT, "reason": reason},
                  lambda family, labels: labels.get("server") == "SEPM2" and labels.get("file") == CERT)


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
    certificates = list(CERTIFICATE_KINDS.items())
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
         "--watch.reconcile-interval", "1"],
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
    exporter = Exporter(load_config(config))
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
