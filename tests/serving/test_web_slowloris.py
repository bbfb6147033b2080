"""Idle and trickling connections must not stop scrapes, with and without TLS (loopback, bounded).

Before: with TLS the handshake ran in the accepting thread without a timeout, so one connection
that sent nothing blocked every scrape until it closed.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port, wait_for
from sepm_exporter.lab import estate
from serving.test_web import _web_config

IDLE = 20  # connections that connect and say nothing
TRICKLE = 5  # connections that send a request one byte at a time
DURATION = 3.0  # seconds of attack while scraping
SCRAPE_BUDGET = 1.0


def _fetch(url: str, context: ssl.SSLContext | None) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(url)
    if "Authorization" not in request.headers:
        import base64

        request.add_header("Authorization", "Basic " + base64.b64encode(b"prometheus:s3cret").decode())
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        response.read()
    return time.perf_counter() - started


@pytest.fixture(params=["plain", "tls"])
def served(request: pytest.FixtureRequest, lab: estate.Lab, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext | None, int]]:
    port = free_port()
    web = _web_config(tmp_path)
    if request.param == "plain":  # the same users, no TLS
        text = web.read_text(encoding="utf-8")
        web.write_text(text[text.index("basic_auth_users:"):], encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    context: ssl.SSLContext | None = None
    scheme = "http"
    if request.param == "tls":
        context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
        context.check_hostname = False
        scheme = "https"
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        wait_for(lambda: _fetch(base + "/-/ready", context), timeout=30)
        yield base, context, port
    finally:
        process.terminate()
        process.wait(timeout=15)


def _trickle(port: int, stop: threading.Event) -> None:
    """A slowloris: a request line sent a byte at a time, never finished."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
                if stop.wait(0.2):
                    return
                sock.sendall(bytes([byte]))
    except OSError:
        return  # cut by the server's idle timeout, or reset: either is fine


def test_scrapes_pass_through_idle_and_trickling_connections(served: tuple[str, ssl.SSLContext | None, int]) -> None:
    base, context, port = served
    idle = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(IDLE)]
    stop = threading.Event()
    trickles = [threading.Thread(target=_trickle, args=(port, stop), daemon=True) for _ in range(TRICKLE)]
    for thread in trickles:
        thread.start()
    times: list[float] = []
    try:
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            times.append(_fetch(base + "/metrics", context))
            time.sleep(0.1)
    finally:
        stop.set()
        for sock in idle:
            sock.close()
        for thread in trickles:
            thread.join(timeout=5)
    assert len(times) >= 5
    assert max(times) < SCRAPE_BUDGET, f"slowest scrape {max(times):.2f} s"
