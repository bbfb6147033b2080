"""A corrupt state file keeps the key history: `serve` restarts from the state saved before it
(`.previous`), keeps a few `.bad` copies, and removes the empty temp file a full disk leaves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import find
from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.judge import history
from sepm_exporter.lab import estate
from sepm_exporter.runtime.history_store import HistoryStore
from sepm_exporter.runtime.problem_log import ProblemLog
from sepm_exporter.settings.config import load_config


def _previous_key(port: int) -> str | None:
    found = find(get(f"http://127.0.0.1:{port}/metrics"), "sepm_server_previous_key_info", server="SEPM1")
    return found[0][0]["public_key_sha256"] if found else None


def test_serve_restarts_from_the_previous_good_state_when_the_file_is_corrupt(lab: estate.Lab, tmp_path: Path) -> None:
    state = load_config(lab.config_path).state_file
    assert state is not None
    port = free_port()
    exporter = start_exporter(lab.config_path, port, "--watch.poll-interval=0.5", log=tmp_path / "first.log")
    try:
        wait_for(lambda: state.is_file(), timeout=30)
        old_key = history.load(state)[0].servers["SEPM1"].current.public_key_sha256  # type: ignore[union-attr]
        lab.renew("SEPM1", new_key=True)  # a key change: saved again, the first save kept as .previous
        assert wait_for(lambda: _previous_key(port), timeout=30) == old_key
    finally:
        stop(exporter)
    assert history.previous_path(state).is_file()
    state.write_bytes(b'{"version": 1, "servers": {"SEPM1": ')  # corrupt: cut mid-write by a full disk
    history.temp_path(state).write_bytes(b"")  # and the empty temp file the full disk left
    log = tmp_path / "second.log"
    exporter = start_exporter(lab.config_path, port, "--watch.poll-interval=0.5", log=log)
    try:
        # The history went on from .previous (SEPM1 on its old key), so the new key is a change again.
        assert wait_for(lambda: _previous_key(port), timeout=30) == old_key
        text = log.read_text(encoding="utf-8")
        assert "kept as state.json.bad, key history restored from state.json.previous" in text
        assert 'msg="server key changed" server=SEPM1' in text
    finally:
        stop(exporter)
    assert not history.temp_path(state).exists()
    assert state.with_name("state.json.bad").read_bytes() == b'{"version": 1, "servers": {"SEPM1": '
    assert history.load(state)[1] is None


def test_a_few_bad_copies_are_kept_newest_first(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for n in range(5):
        state.write_text(f"bad {n}", encoding="utf-8")
        HistoryStore(state, [], ProblemLog())
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["state.json.bad", "state.json.bad.1", "state.json.bad.2"]
    assert [(tmp_path / name).read_text(encoding="utf-8") for name in kept] == ["bad 4", "bad 3", "bad 2"]


def test_a_write_cut_short_leaves_no_temp_file(tmp_path: Path) -> None:
    """A file-size limit makes the write fail part way, as a full disk does (EFBIG instead of ENOSPC):
    the save raises, the temp file is gone and the last good file is untouched."""
    state = tmp_path / "state.json"
    history.save(state, history.History())
    good = state.read_bytes()
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from sepm_exporter.judge import history\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "big = history.History(groups={f'{i:032X}': [history.GroupVersion('c' * 64, float(i))] for i in range(2000)})\n"
        "try:\n"
        f"    history.save(Path({str(state)!r}), big)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc.errno)\n"
        "    sys.exit(0)\n"
        "sys.exit('the save did not fail')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OSError 27")  # EFBIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert state.read_bytes() == good
