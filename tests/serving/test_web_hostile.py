"""Hostile HTTP clients against a real `serve` with basic auth: over-long passwords, brute force,
trickling heads, floods of connections, pipelined and absolute-form requests."""

from __future__ import annotations

import base64
import contextlib
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import bcrypt
import pytest

from helpers import free_port, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.serving.connections import HEAD_TIMEOUT, MAX_CONNECTIONS

USER, PASSWORD = "prometheus", "s3cret-scrape-password"
ROUNDS = 12  # a cost whose check takes long enough to tell a cached answer from a checked one


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _exchange(port: int, raw: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes: everything it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        out = bytearray()
        while chunk := sock.recv(65536):
            out.extend(chunk)
        return bytes(out)


def _get(port: int, path: str, authorization: str, close: bool = True) -> tuple[int, bytes]:
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
    answer = _exchange(port, (head + ("Connection: close\r\n" if close else "") + "\r\n").encode())
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer.partition(b"\r\n\r\n")[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("web-hostile")
    lab = estate.init(tmp / "lab", groups=2, clients=4)
    web = tmp / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=ROUNDS)).decode()
    web.write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _get(port, "/-/ready", _basic(USER, PASSWORD))[0] == 200, timeout=30)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_an_over_long_password_gets_401_for_known_and_unknown_users_alike(served: int) -> None:
    """bcrypt refuses more than 72 bytes: the unknown user's dummy check used to raise and drop the connection."""
    long = "x" * 100
    known = _get(served, "/metrics", _basic(USER, long))
    unknown = _get(served, "/metrics", _basic("nobody-here", long))
    assert known == unknown == (401, b"")
    # The right password followed by more bytes is not the right password.
    assert _get(served, "/metrics", _basic(USER, PASSWORD + "y" * 80))[0] == 401
    assert _get(served, "/metrics", _basic(USER, PASSWORD))[0] == 200


def test_brute_force_does_not_slow_scrapes_with_the_right_password(served: int) -> None:
    """Scrapes with the right password are answered from the credential cache, without a bcrypt check,
    while wrong guesses wait for the one check slot; baseline: one check of this cost, in this run."""
    hashed = bcrypt.hashpw(b"baseline", bcrypt.gensalt(rounds=ROUNDS))
    started = time.perf_counter()
    bcrypt.checkpw(b"wrong", hashed)
    one_check = time.perf_counter() - started
    assert _get(served, "/metrics", _basic(USER, PASSWORD))[0] == 200  # remembered from here on
    stop = threading.Event()
    refused = [0]

    def guess(n: int) -> None:
        while not stop.is_set():
            if _get(served, "/metrics", _basic(USER if n % 2 else "admin", f"guess-{n}-{time.time()}"))[0] == 401:
                refused[0] += 1

    attackers = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(8)]
    for thread in attackers:
        thread.start()
    times = []
    try:
        time.sleep(0.5)
        for _ in range(15):
            started = time.perf_counter()
            status, body = _get(served, "/metrics", _basic(USER, PASSWORD))
            times.append(time.perf_counter() - started)
            assert status == 200 and b"sepm_exporter_ready 1" in body
    finally:
        stop.set()
        for thread in attackers:
            thread.join(timeout=30)
    print(f"one bcrypt check {one_check * 1000:.0f} ms; scrapes under brute force: median "
          f"{statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms; {refused[0]} guesses refused")
    assert refused[0] > 0
    assert statistics.median(times) < one_check


def test_pipelined_requests_are_each_answered_in_order(served: int) -> None:
    auth = _basic(USER, PASSWORD)
    answer = _exchange(served, (
        f"GET /-/healthy HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
        f"HEAD /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
        f"GET /-/ready HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n").encode())
    assert answer.count(b"HTTP/1.1 200 ") == 3
    assert answer.index(b"Healthy.\n") < answer.index(b"Ready.\n")
    assert answer.endswith(b"Ready.\n")  # the HEAD answer carried no body, so nothing is out of step


def test_an_absolute_form_request_target_is_served(served: int) -> None:
    status, body = _get(served, f"http://127.0.0.1:{served}/metrics", _basic(USER, PASSWORD))
    assert status == 200 and b"sepm_exporter_ready 1" in body
    status, body = _get(served, f"http://127.0.0.1:{served}/-/healthy?x=1", _basic(USER, PASSWORD))
    assert (status, body) == (200, b"Healthy.\n")


def test_a_flood_of_connections_is_capped_and_scrapes_resume(served: int) -> None:
    flood = []
    try:
        for _ in range(MAX_CONNECTIONS + 20):
            flood.append(socket.create_connection(("127.0.0.1", served), timeout=5))
        time.sleep(1.0)
        closed = 0
        for sock in flood:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                closed += sock.recv(1) == b""
        assert closed >= 20  # past the cap each new connection is closed at once, without a thread
    finally:
        for sock in flood:
            sock.close()
    wait_for(lambda: _get(served, "/-/healthy", _basic(USER, PASSWORD))[0] == 200, timeout=10)


def test_a_head_trickled_a_byte_every_5_s_is_cut_within_45_s(served: int) -> None:
    """The read timeout alone never fired: each byte came well within it. The head has HEAD_TIMEOUT in all."""
    results: list[float] = []

    def trickle() -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", served), timeout=60) as sock:
            for byte in b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                sock.settimeout(5.0)
                try:
                    if sock.recv(65536) == b"":  # closed by the server
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            results.append(time.monotonic() - started)

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    print(f"trickling connections closed after {', '.join(f'{r:.1f}' for r in results)} s")
    assert len(results) == 3
    assert all(HEAD_TIMEOUT - 1 <= r < 45 for r in results)
    assert _get(served, "/-/healthy", _basic(USER, PASSWORD))[0] == 200
