"""HTTP: /metrics (pre-rendered bytes), /-/healthy, /-/ready and a landing page. No disk I/O per request."""

from __future__ import annotations

import gzip
import io
import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from sepm_exporter.runtime import Exporter
from sepm_exporter.serving import landing, runbooks
from sepm_exporter.serving.connections import HEAD_TIMEOUT, HeadReader, Slots
from sepm_exporter.settings.webconfig import WebConfig

log = logging.getLogger("sepm_exporter")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HANDSHAKE_TIMEOUT = 10.0  # a TLS client that says nothing for this long is dropped
IDLE_TIMEOUT = 30.0  # each read and write; the request head as a whole has HEAD_TIMEOUT
LISTEN_BACKLOG = 128  # the kernel's usual somaxconn; 5 made a burst of connects wait for SYN retries


def landing_page(exporter: Exporter, telemetry_path: str) -> bytes:
    """The on-call's page; built in `landing`."""
    return landing.page(exporter, telemetry_path)


IOV_MAX = 1024  # buffers one sendmsg may take (Linux, BSD)
COALESCE_BYTES = 1 << 20


def send_parts(sock: socket.socket, parts: Sequence[bytes]) -> None:
    """Write the parts with as few hand-offs of the interpreter lock as possible.

    A scrape sends about 600 parts at 100,000 clients. Written one by one, each write gives up the
    lock and waits to take it back, behind a scan that holds it between its own system calls: a
    scrape during a poll paid that wait 600 times. One scatter-gather `sendmsg` (or, under TLS and on
    Windows, writes of about a megabyte) pays it a handful of times.
    """
    views = [memoryview(part) for part in parts if part]
    if hasattr(sock, "sendmsg") and not isinstance(sock, ssl.SSLSocket):
        first = 0
        while first < len(views):
            sent = sock.sendmsg(views[first:first + IOV_MAX])
            while sent and first < len(views):  # drop what went; keep the unsent tail of a part
                size = len(views[first])
                if sent >= size:
                    sent -= size
                    first += 1
                else:
                    views[first] = views[first][sent:]
                    sent = 0
        return
    batch: list[memoryview] = []
    size = 0
    for view in views:
        batch.append(view)
        size += len(view)
        if size >= COALESCE_BYTES:
            sock.sendall(b"".join(batch))
            batch, size = [], 0
    if batch:
        sock.sendall(b"".join(batch))


def make_handler(exporter: Exporter, web: WebConfig, telemetry_path: str) -> type[BaseHTTPRequestHandler]:
    process = CollectorRegistry()
    ProcessCollector(registry=process)

    class Handler(BaseHTTPRequestHandler):
        server_version = "sepm-exporter"
        timeout = IDLE_TIMEOUT
        # An unparsable request line is answered with a status line (400, 414, 505), not in HTTP/0.9
        # style, where the error page is sent bare and a client cannot tell it from content.
        default_request_version = "HTTP/1.0"
        # Keep-alive, so pipelined requests are each answered in turn (every answer has a length);
        # an HTTP/1.0 request or `Connection: close` still ends the connection after its answer.
        protocol_version = "HTTP/1.1"
        head: HeadReader

        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # the stdlib's reader; ours bounds the request head as a whole
            self.head = HeadReader(self.connection, IDLE_TIMEOUT)
            self.rfile = io.BufferedReader(self.head)

        def handle_one_request(self) -> None:
            """Slowloris: the request line and headers within HEAD_TIMEOUT in all, however they trickle
            (a kept-alive connection waiting for its next request waits under the same deadline)."""
            self.head.start(HEAD_TIMEOUT)
            super().handle_one_request()

        def parse_request(self) -> bool:
            parsed = super().parse_request()
            self.head.clear()
            return parsed

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            # `path` is not set yet when the request line itself was refused (400, 414, 505).
            log.debug("http request", extra={"path": getattr(self, "path", ""), "detail": format % args})

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """The standard phrase only: the stdlib's message quotes the client's bytes into the status line."""
            super().send_error(code, None, None)

        def _wants_gzip(self) -> bool:
            return "gzip" in self.headers.get("Accept-Encoding", "")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            if self._wants_gzip() and len(body) > 1024:
                self._send_parts(status, [gzip.compress(body, compresslevel=1)], content_type, "gzip")
            else:
                self._send_parts(status, [body], content_type)

        def _send_parts(self, status: int, parts: list[bytes], content_type: str, encoding: str = "") -> None:
            self.send_response(status)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(sum(len(p) for p in parts)))
            self.end_headers()
            if self.command != "HEAD":
                send_parts(self.connection, parts)

        def _send_metrics(self) -> None:
            """The pre-rendered parts (or their compressed pieces in one gzip stream) plus the process metrics.

            A part is compressed once per change, never once per scrape.
            """
            process_text = generate_latest(process)
            if self._wants_gzip():
                self._send_parts(200, exporter.exposition_gzip_parts(process_text), CONTENT_TYPE, "gzip")
            else:
                self._send_parts(200, [*exporter.exposition_parts(), process_text], CONTENT_TYPE)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            if not web.authorized(self.headers.get("Authorization")):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="sepm-exporter"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, query = request_target(self.path)
            if path == telemetry_path:
                self._send_metrics()
            elif path == "/-/healthy":
                self._send(200, b"Healthy.\n")
            elif path == "/-/ready":
                if exporter.ready:
                    self._send(200, b"Ready.\n")
                else:
                    self._send(503, b"Not ready: first scan running.\n")
            elif path == "/":
                self._send(200, landing_page(exporter, telemetry_path), "text/html; charset=utf-8")
            elif path.startswith(runbooks.PREFIX):  # the runbooks, under the same auth as everything else
                self._send(*runbooks.page(path), "text/html; charset=utf-8")
            elif path == landing.CLIENTS_PATH:
                self._send(*landing.clients_page(exporter, telemetry_path, query), "text/html; charset=utf-8")
            else:
                self._send(404, b"Not found.\n")

    return Handler


def request_target(target: str) -> tuple[str, str]:
    """Path and query of a request target, in origin form (`/metrics?x`) or in the absolute form
    HTTP/1.1 servers must accept (`http://host:port/metrics?x`, RFC 9112 3.2.2)."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


def parse_listen_address(address: str) -> tuple[str, int]:
    """`:10877`, `127.0.0.1:10877` or `[::1]:10877`."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


class _Server(ThreadingHTTPServer):
    """The stdlib server with the TLS handshake moved into each connection's own thread.

    Wrapping the listening socket makes `accept` do the handshake in the one accepting thread, with
    no timeout: one client that connects and says nothing stops every scrape. Here the accepting
    thread only accepts; the handshake runs where the request runs, bounded by HANDSHAKE_TIMEOUT.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    tls: ssl.SSLContext | None = None
    slots: Slots

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection while fewer than MAX_CONNECTIONS are open; past that it is
        closed at once, so a flood of connections cannot take every thread and all memory."""
        if not self.slots.take():
            log.debug("http connection refused: too many open", extra={"detail": repr(client_address)})
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: the slot is not held by anyone
            self.slots.give_back()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.give_back()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as exc:  # ssl.SSLError and socket.timeout are OSErrors
            log.debug("tls handshake failed", extra={"detail": type(exc).__name__})
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line in the log format instead of a raw traceback on stderr (a reset, a bad client)."""
        log.debug("http connection failed", extra={"detail": repr(client_address)}, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class WebServer:
    """A threaded server, with TLS when configured; `close` stops it."""

    def __init__(self, exporter: Exporter, web: WebConfig, listen: str, telemetry_path: str) -> None:
        host, port = parse_listen_address(listen)
        handler = make_handler(exporter, web, telemetry_path)
        self.httpd: _Server = (_Server6 if ":" in host else _Server)((host, port), handler)
        self.httpd.tls = web.tls
        self.httpd.slots = Slots()
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
