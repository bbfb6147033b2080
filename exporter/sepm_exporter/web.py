"""HTTP: /metrics (pre-rendered bytes), /-/healthy, /-/ready and a landing page. No disk I/O per request."""

from __future__ import annotations

import gzip
import html
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.webconfig import WebConfig

log = logging.getLogger("sepm_exporter")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def landing_page(exporter: Exporter, telemetry_path: str) -> bytes:
    """A small page that links the endpoints and lists what needs attention."""
    report = exporter.report()
    lines, found = report.servers, report.findings
    rows = "".join(
        f"<tr><td>{html.escape(s.server)}</td><td>{html.escape(s.site)}</td><td>{'up' if s.root_up else 'DOWN'}</td>"
        f"<td>{'' if s.expires_in_days is None else f'{s.expires_in_days:.0f}'}</td>"
        f"<td>{html.escape(s.signature_hash)}</td><td>{s.key_bits or ''}</td>"
        f"<td><code>{html.escape(s.public_key_sha256[:16])}</code></td></tr>"
        for s in lines
    )
    attention = "".join(
        f"<tr><td>{f.severity.name}</td><td>{html.escape(f.subject)}</td><td>{html.escape(f.message)}</td></tr>"
        for f in found[:200]
    ) or "<tr><td colspan=3>nothing needs attention</td></tr>"
    path = html.escape(telemetry_path)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>SEPM Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body><h1>SEPM Exporter</h1>
<p><a href="{path}">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<h2>Server certificates</h2><table><tr><th>server</th><th>site</th><th>root</th><th>days to expiry</th>
<th>signature</th><th>key bits</th><th>key (sha256)</th></tr>{rows}</table>
<h2>Needs attention</h2><table><tr><th>severity</th><th>what</th><th>why</th></tr>{attention}</table>
</body></html>"""
    return page.encode("utf-8")


def make_handler(exporter: Exporter, web: WebConfig, telemetry_path: str) -> type[BaseHTTPRequestHandler]:
    process = CollectorRegistry()
    ProcessCollector(registry=process)

    class Handler(BaseHTTPRequestHandler):
        server_version = "sepm-exporter"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("http request", extra={"path": self.path})

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
                self.wfile.writelines(parts)

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
            path = self.path.split("?", 1)[0]
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
            else:
                self._send(404, b"Not found.\n")

    return Handler


def parse_listen_address(address: str) -> tuple[str, int]:
    """`:10877`, `127.0.0.1:10877` or `[::1]:10877`."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


class WebServer:
    """A threaded server, with TLS when configured; `close` stops it."""

    def __init__(self, exporter: Exporter, web: WebConfig, listen: str, telemetry_path: str) -> None:
        host, port = parse_listen_address(listen)
        handler = make_handler(exporter, web, telemetry_path)
        server_class = ThreadingHTTPServer
        if ":" in host:
            import socket

            class V6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = V6
        self.httpd = server_class((host, port), handler)
        self.httpd.daemon_threads = True
        if web.tls is not None:
            self.httpd.socket = web.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
