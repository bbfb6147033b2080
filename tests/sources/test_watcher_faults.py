"""Faults while `serve` runs: shares that drop and return, SIGTERM mid-scan, SIGKILL mid-save, event floods."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import find, samples
from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.judge import history
from sepm_exporter.lab import estate

pytestmark = pytest.mark.e2e


def scrape(port: int) -> bytes:
    return get(f"http://127.0.0.1:{port}/metrics")


def facts(exposition: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Everything but the exporter's own bookkeeping (counters, scan times)."""
    return {k: v for k, v in samples(exposition).items() if not k[0].startswith(("sepm_exporter_", "process_", "python_"))}


def scrape_when(port: int, condition: Callable[[bytes], bool], timeout: float = 20) -> bytes:
    def check() -> bytes | None:
        body = scrape(port)
        return body if condition(body) else None

    return wait_for(check, timeout=timeout)


def settled(port: int) -> bytes:
    """The exposition once two scrapes a second apart agree on every fact."""
    def same() -> bytes | None:
        first = scrape(port)
        time.sleep(1)
        second = scrape(port)
        return second if facts(first) == facts(second) else None

    return wait_for(same, timeout=30)


@pytest.mark.parametrize("mode", ["events", "poll"])
def test_a_share_that_drops_twice_recovers_without_restart(mode: str, lab: estate.Lab, tmp_path: Path) -> None:
    port = free_port()
    exporter = start_exporter(lab.config_path, port, "--clients.series=all", f"--watch.mode={mode}", "--watch.poll-interval=0.3",
                              log=tmp_path / "exporter.log")
    try:
        lab.renew("SEPM1", new_key=True)  # a key history and client states that the outages must not reset
        lab.publish("SEPM1")
        lab.replicate("SEPM1", "SEPM2")
        lab.pull(0.5)
        wait_for(lambda: find(scrape(port), "sepm_server_key_changed_timestamp_seconds"), timeout=20)
        before = settled(port)
        assert {v for _, v in find(before, "sepm_client_sylink_current")} == {0.0, 1.0}
        for _ in range(2):
            lab.vanish("SEPM1")
            down = scrape_when(port, lambda b: find(b, "sepm_exporter_root_up", server="SEPM1")[0][1] == 0)
            assert facts(down) == facts(before), "last known facts, key history and client states are kept"
            lab.restore("SEPM1")
            wait_for(lambda: find(scrape(port), "sepm_exporter_root_up", server="SEPM1")[0][1] == 1, timeout=20)
        assert facts(settled(port)) == facts(before)
        time.sleep(1.1)
        lab.renew("SEPM1", new_key=False)  # and a change after the outages is still seen
        old = find(before, "sepm_certificate_not_before_timestamp_seconds", server="SEPM1")
        wait_for(lambda: find(scrape(port), "sepm_certificate_not_before_timestamp_seconds", server="SEPM1") != old,
                 timeout=20)
    finally:
        stop(exporter)


def test_sigterm_during_first_scans_leaves_a_valid_state_file(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=40, clients=3000)
    state = lab.directory / "state.json"
    port = free_port()
    stop(start_exporter(lab.config_path, port, "--clients.series=all"))  # one full run: a state file exists
    rng = random.Random(3)
    for attempt in range(6):
        if attempt == 3:
            for server in ("SEPM1", "SEPM2"):
                lab.renew(server, new_key=True)  # the next runs have history to write
            lab.publish("SEPM1")
        process = subprocess.Popen(
            [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
             "--web.listen-address", f"127.0.0.1:{free_port()}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        loaded, problem = history.load(state)
        assert problem is None, problem
    assert loaded.servers  # the history survived every interruption


def test_sigkill_during_state_writes_never_corrupts_the_file(tmp_path: Path) -> None:
    """A writer killed at random instants, twenty times: the file on disk always loads, old or new."""
    path = tmp_path / "state.json"
    writer = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from sepm_exporter.judge import history\n"
        "h = history.History()\n"
        "for g in range(20000):\n"
        "    history.record_group_version(h, f'{g:032X}', f'{g:064x}', 1e9 + g)\n"
        f"history.save(Path({str(path)!r}), h)\n"
        "print('ready', flush=True)\n"  # one save done: a slow machine still kills mid-write from here on
        "n = 0\n"
        "while True:\n"
        "    n += 1\n"
        "    history.record_group_version(h, f'{n % 20000:032X}', f'{n:064x}', 2e9 + n)\n"
        f"    history.save(Path({str(path)!r}), h)\n"
    )
    rng = random.Random(11)
    sizes = set()
    for _ in range(20):
        process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        if path.exists():
            loaded, problem = history.load(path)
            assert problem is None, problem
            assert len(loaded.groups) == 20000
            sizes.add(path.stat().st_size)
    assert sizes, "the writer never completed one save"


@pytest.mark.xdist_group("inotify-sysctl")  # machine-wide limits: never two such tests at once
def test_an_event_flood_ends_equal_to_a_fresh_scan(tmp_path: Path) -> None:
    """10,000 rewrites in a burst: whatever the kernel queue dropped, the exporter converges to the disk."""
    lab = estate.init(tmp_path / "lab", groups=4, clients=2000)
    port = free_port()
    queue = Path("/proc/sys/fs/inotify/max_queued_events")
    original = queue.read_text() if queue.exists() else ""
    try:  # as root: a small queue makes the overflow certain, not likely
        queue.write_text("512")
        shrink = True
    except OSError:  # not root, or /proc/sys read-only in a container: the flood still has to converge
        shrink = False
    try:
        exporter = start_exporter(lab.config_path, port, "--clients.series=all", "--watch.mode=events", "--watch.reconcile-interval=300",
                                  log=tmp_path / "exporter.log")
    finally:
        if shrink:
            queue.write_text(original)  # the exporter's inotify instance keeps the size it was created with
    try:
        paths = [lab.client_path(name) for name in lab.state.clients]
        variants = ["crlf", "utf8-bom", "utf16-le", "utf16-be", "crlf"]
        for round_ in range(5):
            for path in paths:
                lab.write_variant(variants[round_], path)
        os.sync()

        def fresh() -> bytes:
            return subprocess.run([sys.executable, "-m", "sepm_exporter", "metrics", "--config", str(lab.config_path),
                                   "--clients.series=all"], capture_output=True, check=True, timeout=120).stdout

        expected = facts(fresh())
        wait_for(lambda: facts(scrape(port)) == expected, timeout=60, interval=0.5)
        events = {labels["kind"]: value for labels, value in find(scrape(port), "sepm_exporter_events_total")}
        if shrink:
            assert events["overflow"] >= 1, events  # seen, and answered by a scan long before the 300 s reconcile
        else:
            assert sum(events.values()) > 0
        # watchdog's "Inotify queue overflowed" used to go bare to stderr: every line is in the log format.
        lines = (tmp_path / "exporter.log").read_text(encoding="utf-8").splitlines()
        assert [line for line in lines if not line.startswith("ts=")] == []
        overflow_lines = [line for line in lines if "Inotify queue overflowed" in line]
        assert all('msg="file watcher warning"' in line for line in overflow_lines)
        if overflow_lines:
            assert events["overflow"] >= 1, events
    finally:
        stop(exporter)


@pytest.mark.xdist_group("inotify-sysctl")  # machine-wide limits: never two such tests at once
def test_too_few_inotify_watches_falls_back_to_polling(lab: estate.Lab, tmp_path: Path) -> None:
    """More folders than fs.inotify.max_user_watches: the exporter says so and polls instead of going blind."""
    limit = Path("/proc/sys/fs/inotify/max_user_watches")
    original = limit.read_text() if limit.exists() else ""
    try:
        limit.write_text("3")
    except OSError:
        pytest.skip("needs root and a writable /proc/sys to lower the inotify watch limit")
    log = tmp_path / "exporter.log"
    exporter = None
    try:
        port = free_port()
        exporter = start_exporter(lab.config_path, port, "--clients.series=all", "--watch.mode=events",
                                  "--watch.poll-interval=0.3", log=log)
        text = log.read_text(encoding="utf-8")
        assert f"cannot watch root; polling instead\" file={lab.clients_root}" in text
        client = lab.client_path("WS-0002")
        lab.write_variant("crlf", client)  # the collection has no watch: only the poll can see this
        wanted = hashlib.sha256(client.read_bytes()).hexdigest()
        scrape_when(port, lambda b: find(b, "sepm_client_sylink_info", client="WS-0002")[0][0]["sha256"] == wanted)
        time.sleep(1)  # a few more polls: the warning must not repeat with each
        warnings = [line for line in log.read_text(encoding="utf-8").splitlines() if "cannot watch root" in line]
        assert sum(f"file={lab.clients_root}" in w for w in warnings) == 1, "once per root, not once per poll"
    finally:
        limit.write_text(original)
        if exporter is not None:
            stop(exporter)


def _folders(root: Path) -> int:
    return sum(1 for _ in os.walk(root))


_PROBE = """
import sys
from pathlib import Path
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from sepm_exporter.sources.watcher import inotify_watched_inodes, unwatched_folders
observer = Observer()
observer.start()
try:
    observer.schedule(FileSystemEventHandler(), sys.argv[1], recursive=True)
except OSError:
    print("refused")
else:
    print("partial" if unwatched_folders(Path(sys.argv[1]), inotify_watched_inodes() or set()) else "all")
observer.stop()
"""


def _in_namespace_with_limit(limit: int, *command: str) -> list[str]:
    """`command` in a user namespace of its own whose inotify watch limit is `limit` (never machine-wide)."""
    return ["unshare", "-U", "-r", "sh", "-c", f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$@"', "sh",
            *command]


def _serve_in_namespace(lab: estate.Lab, limit: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`serve` in events mode under that watch limit, polling every 0.5 s, reconciling rarely, logging to `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            _in_namespace_with_limit(limit, sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
                                     "--web.listen-address", f"127.0.0.1:{port}", "--watch.mode=events",
                                     "--watch.poll-interval=0.5", "--watch.reconcile-interval=600",
                                     "--clients.series=all"),
            stdout=out, stderr=out,
        )


def _skip_unless_the_machine_allows_watches() -> None:
    """A user namespace's watches count against the machine-wide limit too: with that lowered (another
    test run on the same machine, at its sysctl test), nothing here can get a watch."""
    machine = Path("/proc/sys/fs/inotify/max_user_watches")
    if machine.exists() and int(machine.read_text()) < 10_000:
        pytest.skip(f"fs.inotify.max_user_watches is {machine.read_text().strip()} machine-wide: lowered by another run?")


def _watch_limit_behaviour(tmp_path: Path) -> str:
    """What this kernel and this watchdog do when a recursive root has more folders than the limit
    allows: "refused" (the whole root fails to schedule), "partial" (it schedules, some folders stay
    unwatched without a word) or "all" (the namespace's limit does not bite). Both of the first two
    have been seen: which one depends on the kernel's per-namespace accounting and watchdog's version."""
    _skip_unless_the_machine_allows_watches()
    tree = tmp_path / "probe"
    for name in ("a", "b", "c"):
        (tree / name).mkdir(parents=True)
    probe = subprocess.run(_in_namespace_with_limit(2, sys.executable, "-c", _PROBE, str(tree)),
                           capture_output=True, check=False, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"no user namespace with its own inotify limit here: {probe.stderr.decode(errors='replace')[-300:]}")
    return probe.stdout.decode().strip()


@pytest.mark.xdist_group("inotify-sysctl")  # a namespace's watches also count against the machine-wide limit, which those tests lower
def test_folders_inotify_cannot_watch_are_polled_and_named(lab: estate.Lab, tmp_path: Path) -> None:
    """Three folders more than the inotify watch limit allows. Depending on the kernel and watchdog,
    either watchdog refuses the whole last root, or it watches the root and silently drops the
    sub-folder watches it cannot add (also what it does when it rebuilds them after a queue overflow).
    Either way the exporter must say so (naming the root, or counting the folders) and poll, so a
    rewrite is seen long before the 600 s reconciliation.

    The limit is lowered in a user namespace of the exporter's own (`unshare -U -r`), never machine-wide.
    """
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    behaviour = _watch_limit_behaviour(tmp_path)
    if behaviour == "all":
        pytest.skip("the user namespace's inotify watch limit does not bite here: every folder got its watch")
    roots = [lab.server_root(s.name) for s in lab.state.servers] + [lab.clients_root]
    limit = sum(_folders(root) for root in roots) - 3  # the roots are watched in this order: the last one is short
    port = free_port()
    log = tmp_path / "exporter.log"
    process = _serve_in_namespace(lab, limit, port, log)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/-/ready"), timeout=30)
        if behaviour == "refused":
            text = log.read_text(encoding="utf-8")
            refused = [line for line in text.splitlines() if "cannot watch root; polling instead" in line]
            assert len(refused) == 1 and f"file={lab.clients_root} " in refused[0] + " ", refused
            assert "inotify watch limit" in refused[0], refused  # and why
            assert "msg=watching mode=poll" in text
        else:
            wait_for(lambda: "some folders have no inotify watch" in log.read_text(encoding="utf-8"), timeout=15)
            assert "folders=3" in log.read_text(encoding="utf-8")
        paths = {name: lab.client_path(name) for name in lab.state.clients}
        for path in paths.values():
            lab.write_variant("utf16-le", path)
        wanted = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in paths.items()}

        def seen() -> bool:
            got = {labels["client"]: labels["sha256"] for labels, _ in find(get(f"http://127.0.0.1:{port}/metrics"),
                                                                            "sepm_client_sylink_info")}
            return got == wanted

        wait_for(seen, timeout=10)  # the reconciliation is 600 s away: only the polling sees the unwatched ones
    finally:
        stop(process)


_PROBE_LATER = """
import logging
import sys
import time
from pathlib import Path
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from sepm_exporter.sources.watcher import inotify_watched_inodes, unwatched_folders
said = []
class Said(logging.Handler):
    def emit(self, record):
        said.append(record.getMessage().lower())
logging.getLogger("watchdog").addHandler(Said())
root = Path(sys.argv[1])
observer = Observer()
observer.start()
observer.schedule(FileSystemEventHandler(), str(root), recursive=True)
for name in ("x", "y"):
    (root / name).mkdir()
time.sleep(1)
gap = unwatched_folders(root, inotify_watched_inodes() or set())
print("all" if not gap else "reported" if any(m.startswith("unable to watch") for m in said) else "silent")
observer.stop()
"""


@pytest.mark.xdist_group("inotify-sysctl")  # a namespace's watches also count against the machine-wide limit, which those tests lower
def test_folders_made_after_the_start_past_the_limit_are_polled(lab: estate.Lab, tmp_path: Path) -> None:
    """Every folder watched at the start, then new client folders past the inotify limit: watchdog
    (7.x) leaves them unwatched and says so only in its own log. The exporter must take that line as
    a reason to check its watches and poll, or a rewrite there waits for the 600 s reconciliation."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    _skip_unless_the_machine_allows_watches()
    (tmp_path / "probe" / "a").mkdir(parents=True)
    probe = subprocess.run(_in_namespace_with_limit(3, sys.executable, "-c", _PROBE_LATER, str(tmp_path / "probe")),
                           capture_output=True, check=False, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"no user namespace with its own inotify limit here: {probe.stderr.decode(errors='replace')[-300:]}")
    behaviour = probe.stdout.decode().strip()
    if behaviour != "reported":
        pytest.skip(f"this watchdog and kernel: {behaviour!r}, not a refused watch it reports; the reconciliation finds those")
    roots = [lab.server_root(s.name) for s in lab.state.servers] + [lab.clients_root]
    limit = sum(_folders(root) for root in roots) + 1  # room for one new folder, not three
    port = free_port()
    log = tmp_path / "exporter.log"
    process = _serve_in_namespace(lab, limit, port, log)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/-/ready"), timeout=30)
        wait_for(lambda: "some folders have no inotify watch" not in log.read_text(encoding="utf-8")
                 and "msg=\"first scan done\"" in log.read_text(encoding="utf-8"), timeout=15)
        time.sleep(1.5)  # past the first watch check: every folder is watched now
        assert "cannot watch root" not in log.read_text(encoding="utf-8")
        new = [lab.clone_client("WS-0001", f"WS-NEW-{i}") for i in range(3)]

        def clients() -> dict[str, str]:
            return {labels["client"]: labels["sha256"] for labels, _ in find(get(f"http://127.0.0.1:{port}/metrics"),
                                                                             "sepm_client_sylink_info")}

        wait_for(lambda: {"WS-NEW-0", "WS-NEW-1", "WS-NEW-2"} <= set(clients()), timeout=10)
        for path in new:
            lab.write_variant("utf16-le", path)  # inside the new folders: only a watch or the polling sees it
        wanted = {path.parent.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in new}
        wait_for(lambda: {name: clients().get(name) for name in wanted} == wanted, timeout=10)
        text = log.read_text(encoding="utf-8")
        assert "cannot watch root; polling instead" in text or "some folders have no inotify watch" in text, text[-2000:]
    finally:
        stop(process)


def test_a_root_given_through_a_link_is_not_taken_for_an_unwatched_folder(tmp_path: Path) -> None:
    """inotify watches where a root's link leads; the check must compare the same inode, or it would
    poll forever on an estate mounted through a link."""
    from sepm_exporter.sources.watcher import unwatched_folders

    real = tmp_path / "real"
    (real / "WS-0001").mkdir(parents=True)
    (real / "WS-0001" / "inner").mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    (real / "elsewhere").symlink_to(tmp_path, target_is_directory=True)  # a link below the root is not followed
    everything = {os.stat(p).st_ino for p in (real, real / "WS-0001", real / "WS-0001" / "inner")}
    assert unwatched_folders(link, everything) == {}
    inner = os.stat(real / "WS-0001" / "inner").st_ino
    assert unwatched_folders(link, everything - {inner}) == {inner: str(link / "WS-0001" / "inner")}
