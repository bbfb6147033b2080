"""A total deadline for one HTTP request: connect, TLS handshake, headers and body together.

httpx's timeouts apply to each read, so a server that sends one byte a second never trips them and
holds a poll for as long as it likes. Here every socket operation of a request waits at most until
the request's deadline: the stream below httpcore is wrapped, and each read, write, connect and
handshake gets the smaller of its own timeout and the time left. Past the deadline the operation
fails as a timeout, which httpx reports as `httpx.TimeoutException`.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx


class Deadline:
    """When the current request must be over (monotonic seconds); `inf` between requests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.at = math.inf

    def start(self, seconds: float) -> None:
        self.at = self.clock() + seconds

    def clear(self) -> None:
        self.at = math.inf

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """The timeout for one operation: its own, cut to what is left; `error` once nothing is."""
        if self.at == math.inf:
            return timeout
        remaining = self.at - self.clock()
        if remaining <= 0:
            raise error("request deadline passed")
        return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self.inner = inner
        self.deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self.deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self.deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        wrapped = self.inner.start_tls(ssl_context, server_hostname, self.deadline.left(timeout, httpcore.ConnectTimeout))
        return _Stream(wrapped, self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, deadline: Deadline) -> None:
        self.inner = httpcore.SyncBackend()
        self.deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self.inner.connect_tcp(host, port, self.deadline.left(timeout, httpcore.ConnectTimeout),
                                        local_address, socket_options)
        return _Stream(stream, self.deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self.inner.connect_unix_socket(path, self.deadline.left(timeout, httpcore.ConnectTimeout), socket_options)
        return _Stream(stream, self.deadline)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def transport(deadline: Deadline, verify: ssl.SSLContext | bool) -> httpx.HTTPTransport:
    """httpx's own transport, its connections opened through the deadline-keeping backend.

    httpx 0.2x does not take a network backend, so the pool's is replaced; `tests/sources/test_api.py`
    fails if a new httpx renames it, rather than the deadline silently going."""
    made = httpx.HTTPTransport(verify=verify)
    pool = made._pool
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpcore's connection pool has no _network_backend: the request deadline cannot be kept")
    pool._network_backend = _Backend(deadline)
    return made
