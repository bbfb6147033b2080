"""Process helpers for tests that start real servers on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Poll until the predicate gives a truthy value; fail with the timeout, never sleep blindly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def start_exporter(config: Path, port: int, *extra: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(config),
         "--web.listen-address", f"127.0.0.1:{port}", *extra],
        stdout=out, stderr=out,
    )
    wait_for(lambda: get(f"http://127.0.0.1:{port}/-/ready"), timeout=30)
    return process


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def as_nobody(work: Callable[[], bytes]) -> bytes:
    """`work()` in a forked child running as nobody (uid/gid 65534), its bytes back through a pipe.

    Root reads every file whatever its mode; an unreadable file or folder is only unreadable to
    someone else. Skips the test where the sandbox forbids dropping privileges.
    """
    import os

    import pytest

    read, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, work, send the result, leave without cleanup
        os.close(read)
        code = 0
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        except OSError:
            os._exit(3)  # no right to drop privileges (a restricted container): say so, do not fail
        try:
            data = work()
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read, "rb") as incoming:
        data = incoming.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 3:
        pytest.skip("cannot switch to an unprivileged user here")
    assert os.waitstatus_to_exitcode(status) == 0 and data
    return data
