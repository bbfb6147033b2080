"""The landing page in a real browser (Debian's chromium, headless, driven by playwright): what a person sees.

Before, during and after the incident: the banner's state, one row per group with its clients, the
fix with the file to import, runbook links that resolve, nothing cut with 300 stranded clients,
and hostile client names shown as text. With SEPM_UPDATE_SCREENSHOTS=1 the three states are saved
to docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.lab import estate

ROOT = Path(__file__).parent.parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "docs" / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extras)")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh profile per run; never a downloaded browser, only the system's chromium."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    tab = browser.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs
    yield tab
    assert not dialogs, f"a script ran on the page: {dialogs}"
    tab.close()


def _serve(lab: estate.Lab, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = start_exporter(lab.config_path, port, "--watch.mode", "poll", "--watch.poll-interval", "0.2",
                             log=tmp_path / "exporter.log")
    return process, f"http://127.0.0.1:{port}"


def _banner(page: Any, url: str) -> str:
    page.goto(url + "/")
    return str(page.get_attribute("#banner", "data-state"))


def _totals(page: Any) -> dict[str, int]:
    return {str(el.get_attribute("data-state")): int(el.query_selector("b").inner_text())
            for el in page.query_selector_all("#totals .total")}


def _problems(page: Any) -> list[dict[str, str]]:
    rows = []
    for row in page.query_selector_all("#problems tr.problem"):
        cells = row.query_selector_all(":scope > td")
        count = row.query_selector("b.count")
        link = row.query_selector("a.runbook")
        group_id = cells[1].query_selector("code")
        group_name = cells[1].query_selector(".group-name")
        rows.append({
            "group_id": group_id.inner_text().strip() if group_id else "",
            "group_name": group_name.inner_text().strip() if group_name else "",
            "severity": cells[0].inner_text().strip(), "subject": cells[1].inner_text().strip(),
            "what": cells[2].inner_text().strip(), "clients": count.inner_text() if count else "0",
            "since": cells[4].inner_text().strip(), "fix": cells[5].inner_text().strip(),
            "runbook": link.get_attribute("href") if link else "",
        })
    return rows


def _runbooks_resolve(rows: list[dict[str, str]], url: str) -> None:
    """Every runbook link is served by the exporter itself, rendered from docs/runbooks/<alert>.md."""
    for row in rows:
        assert row["runbook"].startswith("runbooks/SEPM"), row
        name = row["runbook"].removeprefix("runbooks/")
        assert (ROOT / "docs" / "runbooks" / f"{name}.md").is_file(), f"runbook link to a missing file: {name}"
        served = get(f"{url}/{row['runbook']}").decode()
        assert f"<h1>{name}</h1>" in served and "<h2>Fix</h2>" in served, name


def _shoot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("SEPM_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / f"{name}.png")


def test_before_during_and_after_the_incident(page: Any, tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=3, clients=12)
    process, url = _serve(lab, tmp_path)
    try:
        # Before: years on SHA-1; the page says what to do about it before anyone renews.
        assert _banner(page, url) == "warning"
        rows = _problems(page)
        # one row per certificate to renew, naming both copies (Apache's server.crt and Tomcat's keystore.jks)
        assert sorted(r["subject"] for r in rows) == ["server SEPM1", "server SEPM2"]
        assert all(r["severity"] == "WARNING" and "WITHOUT generating a new key" in r["fix"] for r in rows)
        assert all("server.crt and tomcat/etc/keystore.jks are signed with sha1" in r["what"] for r in rows), rows
        _runbooks_resolve(rows, url)
        assert _totals(page) == {"current": 12, "stale": 0, "untrusted": 0, "unknown": 0, "unmatched": 0}
        assert page.inner_text("#servers").count("sha1 (weak)") == 2
        assert "version" in page.inner_text("header") and "watching live" in page.inner_text("#scan")
        _shoot(page, tmp_path, "before")

        # During: both partners renew with a new key; replication; every client is stranded.
        lab.renew("SEPM1", new_key=True)
        lab.renew("SEPM2", new_key=True)
        lab.publish("SEPM1")
        lab.replicate("SEPM1", "SEPM2")

        def settled() -> bool:  # the watcher may show SEPM2 before replication reached it: wait for the end state
            groups = [r for r in _problems(page) if r["subject"].startswith("group ")]
            return _banner(page, url) == "critical" and _totals(page)["untrusted"] == 12 and len(groups) == 3

        wait_for(settled, timeout=30)
        rows = _problems(page)
        groups = [r for r in rows if r["subject"].startswith("group ")]
        assert not [r for r in rows if r["subject"].startswith("client ")], "one row per group, not one per client"
        assert all(r["severity"] == "CRITICAL" and r["clients"] == "4" and r["since"] != "unknown" for r in groups)
        names = {g.group_id: g.name for g in lab.state.groups}
        for row in groups:  # the name the SEPM console shows, above the ID the outbox folder has
            group_id = row["group_id"]
            assert row["group_name"] == names[group_id] and row["subject"].startswith(f"group {names[group_id]}")
            assert any(str(lab.sylink_path(s.name, group_id)) in row["fix"] for s in lab.state.servers), row["fix"]
        listed = {r.query_selector("code").inner_text(): r.query_selector(".group-name").inner_text()
                  for r in page.query_selector_all("#groups tr") if r.query_selector("code")}
        assert listed == names
        _runbooks_resolve(rows, url)
        assert "12 clients cannot connect" in page.inner_text("#banner")
        assert not [r for r in rows if r["severity"] == "CRITICAL" and r["subject"].startswith("server ")], \
            "the clients are seen: the key change is a warning, the stranded groups page"
        page.click("#problems tr.problem details summary")
        _shoot(page, tmp_path, "during")

        # After: every client imported its group's new file.
        lab.pull(1.0)
        wait_for(lambda: _banner(page, url) and _totals(page)["current"] == 12, timeout=30)
        wait_for(lambda: _banner(page, url) == "ok", timeout=30)
        rows = _problems(page)
        assert not rows, "full recovery: every client embeds the new keys, nothing pages and nothing warns"
        assert _totals(page) == {"current": 12, "stale": 0, "untrusted": 0, "unknown": 0, "unmatched": 0}
        assert page.inner_text("#servers").count("every client seen embeds it") == 2
        _shoot(page, tmp_path, "after")
    finally:
        stop(process)


def test_all_clear_on_a_modern_estate(page: Any, tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=4, signature_hash="sha256", key_bits=2048)
    process, url = _serve(lab, tmp_path)
    try:
        assert _banner(page, url) == "ok"
        assert "ALL CLEAR" in page.inner_text("#banner")
        assert page.inner_text("#problems").count("Nothing needs attention") == 1
    finally:
        stop(process)


def test_300_stranded_clients_are_all_reachable_and_names_are_text(page: Any, tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=1, clients=299, signature_hash="sha256", key_bits=2048)
    hostile = '<img src=x onerror=alert(1)>"&'
    lab.clone_client("WS-0001", hostile)
    process, url = _serve(lab, tmp_path)
    try:
        assert _banner(page, url) == "ok"
        lab.renew("SEPM1", new_key=True)
        lab.renew("SEPM2", new_key=True)
        lab.publish("SEPM1")
        lab.replicate("SEPM1", "SEPM2")
        wait_for(lambda: _banner(page, url) == "critical" and _totals(page)["untrusted"] == 300, timeout=60)
        (row,) = [r for r in _problems(page) if r["subject"].startswith("group ")]
        assert row["clients"] == "300"
        page.click("#problems details summary")
        assert len([li for li in page.query_selector_all("#problems details li") if li.is_visible()]) == 100
        details = page.inner_text("#problems details")
        assert "100 of 300 shown" in details and "All 300 clients (2 pages)" in details
        page.click("#problems details a")
        seen: list[str] = []
        while True:
            seen += [td.inner_text() for td in page.query_selector_all("#clients tr td:nth-child(2)")]
            following = page.query_selector("a[rel=next]")
            if following is None:
                break
            following.click()
        assert len(seen) == 300 and set(seen) == set(lab.state.clients), "every client on some page, none twice"
        assert hostile in seen, "a hostile name is shown as text"
        assert page.query_selector("img") is None
    finally:
        stop(process)
