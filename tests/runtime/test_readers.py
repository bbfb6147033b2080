"""Readers never wait for the writer: a scan stuck on a share leaves scrapes, the page and `check` answering."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from conftest import one
from sepm_exporter.lab import estate
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config


def _stuck_scan(exporter: Exporter, release: threading.Event, inside: threading.Event,
                monkeypatch: pytest.MonkeyPatch) -> threading.Thread:
    """A full scan that blocks in the middle of a client collection until `release` is set."""
    original = exporter.scanner.scan_collection

    def slow(key: str) -> None:
        inside.set()
        release.wait(60)
        original(key)

    monkeypatch.setattr(exporter.scanner, "scan_collection", slow)
    thread = threading.Thread(target=exporter.full_scan, daemon=True)
    thread.start()
    assert inside.wait(30), "the scan never reached the collection"
    return thread


def _answers(action: object) -> bool:
    """True when `action()` returns while the writer is stuck (a reader that waits would hang here)."""
    done = threading.Event()

    def run() -> None:
        action()  # type: ignore[operator]
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(20)


def test_the_cold_scan_does_not_hold_scrapes(lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = Exporter(load_config(lab.config_path))
    release, inside = threading.Event(), threading.Event()
    thread = _stuck_scan(exporter, release, inside, monkeypatch)
    try:
        assert _answers(exporter.exposition_parts) and _answers(exporter.exposition_gzip_parts) and _answers(exporter.report)
        text = exporter.exposition
        assert one(text, "sepm_exporter_ready") == 0, "before the first scan ends: the exporter's own series only"
        assert b"sepm_certificate_info{" not in text, "never a half-scanned tree"
        assert exporter.report().findings == []
    finally:
        release.set()
        thread.join(30)
    assert one(exporter.exposition, "sepm_exporter_ready") == 1
    assert one(exporter.exposition, "sepm_group_clients", group_id=lab.state.groups[0].group_id, state="current") > 0


def test_a_reconciliation_scan_does_not_hold_scrapes(lab: estate.Lab, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    before = exporter.exposition
    lab.renew("SEPM1", new_key=True)
    release, inside = threading.Event(), threading.Event()
    thread = _stuck_scan(exporter, release, inside, monkeypatch)
    try:
        assert _answers(exporter.exposition_parts) and _answers(exporter.report)
        assert exporter.exposition == before, "the last complete exposition, until the new one is whole"
    finally:
        release.set()
        thread.join(30)
    assert exporter.exposition != before
    assert b'sepm_server_key_changed_timestamp_seconds{server="SEPM1"' in exporter.exposition


def test_the_page_says_the_first_scan_is_running_not_all_clear(lab: estate.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from sepm_exporter.serving import landing

    exporter = Exporter(load_config(lab.config_path))
    release, inside = threading.Event(), threading.Event()
    thread = _stuck_scan(exporter, release, inside, monkeypatch)
    try:
        page = landing.page(exporter, "/metrics").decode()
        assert 'data-state="scanning"' in page and "ALL CLEAR" not in page
    finally:
        release.set()
        thread.join(30)
    assert 'data-state="scanning"' not in landing.page(exporter, "/metrics").decode()
