"""A loopback TLS listener that serves a lab server's certificate as Apache or Tomcat would.

It loads the certificate and key once, when it starts, as the real services do: renew the files
afterwards and it keeps serving the old ones until it is restarted. That is the "renewed on disk,
not yet restarted" state the probes exist to catch.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from sepm_exporter.lab import pki

HANDSHAKE_TIMEOUT = 5.0


def server_context(key: rsa.RSAPrivateKey, chain: list[bytes]) -> ssl.SSLContext:
    """A server context for a lab key and chain (DER, leaf first); legacy 1024-bit SHA-1 ones included."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    with tempfile.TemporaryDirectory(prefix="sepm-lab-tls-") as folder:  # ssl loads only from files
        cert_file, key_file = Path(folder) / "chain.pem", Path(folder) / "key.pem"
        cert_file.write_bytes(b"".join(pki.pem(der) for der in chain))
        key_file.write_bytes(pki.key_pem(key))
        context.load_cert_chain(cert_file, key_file)
    return context


class TlsListener:
    """Accepts on `host:port` (0 picks a free port) and completes a TLS handshake with every caller."""

    def __init__(self, context: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0) -> None:
        self.context = context
        self.socket = socket.create_server((host, port))
        self.socket.settimeout(0.2)  # here, not in the thread: a close() right after start() must not race it
        self.port = int(self.socket.getsockname()[1])
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, name=f"lab-tls-{self.port}", daemon=True)
        self.handshakes = 0

    def start(self) -> TlsListener:
        self.thread.start()
        return self

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(HANDSHAKE_TIMEOUT)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                with contextlib.suppress(OSError):
                    tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (OSError, ssl.SSLError):
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.socket.close()
        self.thread.join(timeout=2)


class BlackHole:
    """A listening socket that never accepts: connects complete in the kernel, no handshake ever answers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.socket = socket.create_server((host, 0), backlog=128)
        self.port = int(self.socket.getsockname()[1])

    def close(self) -> None:
        self.socket.close()
