"""TLS probes: what each configured endpoint actually serves, read by a handshake.

A file watcher sees `server.crt` renewed on disk; only a handshake shows whether Apache and Tomcat
were restarted onto it. The prober connects to the configured endpoints and nowhere else, reads
the served leaf without validating it (SEPM's certificate is self-signed), optionally checks it
against a CA file, and hands the samples to the runtime from its own thread: a scrape never waits.

All endpoints of a round are probed concurrently on one event loop, each bounded by the timeout
(connect and handshake together), so a round of black-holed endpoints lasts one timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from sepm_exporter.sepm.certificate import CertificateFacts, parse_der
from sepm_exporter.sepm.reasons import ParseError
from sepm_exporter.settings.config import Config, ProbeTarget

log = logging.getLogger("sepm_exporter")

REASONS = ("timeout", "refused", "unreachable", "dns", "tls_error", "no_certificate", "bad_certificate")


@dataclass(frozen=True)
class ProbeResult:
    """One endpoint's answer in one round."""

    server: str
    endpoint: str
    up: bool
    duration: float
    leaf: CertificateFacts | None = None
    reason: str = ""  # one of REASONS when not up
    verified: bool | None = None  # None when no ca_file is configured


def _context() -> ssl.SSLContext:
    """No validation, every protocol and cipher OpenSSL still has: a monitor must read a 2012 SEPM too."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:  # a build without security levels
        context.set_ciphers("ALL")
    return context


def _sni(target: ProbeTarget) -> str:
    """The name to send: the configured one, else the host when it is a name (SNI carries no addresses)."""
    if target.server_name:
        return target.server_name
    try:
        ipaddress.ip_address(target.host)
    except ValueError:
        return target.host
    return ""


def verify_leaf(der: bytes, ca_file: Path, now: float) -> bool:
    """True when a certificate of `ca_file` directly issued the leaf and the leaf is within its validity.

    Direct issuance only: the served chain is not kept, so intermediates belong in the CA file.
    """
    try:
        leaf = x509.load_der_x509_certificate(der)
        authorities = x509.load_pem_x509_certificates(ca_file.read_bytes())
    except (OSError, ValueError):
        return False
    if not leaf.not_valid_before_utc.timestamp() <= now <= leaf.not_valid_after_utc.timestamp():
        return False
    return any(_issued_by(leaf, authority) for authority in authorities)


def _issued_by(leaf: x509.Certificate, authority: x509.Certificate) -> bool:
    """Issuer name and signature; by hand, because `verify_directly_issued_by` refuses SHA-1, which
    is exactly what a 12.1-era SEPM certificate is signed with."""
    if leaf.issuer != authority.subject:
        return False
    try:
        key = authority.public_key()
        algorithm = leaf.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(leaf.signature, leaf.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


async def _handshake(target: ProbeTarget, context: ssl.SSLContext, timeout: float) -> bytes | None:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(target.host, target.port, ssl=context, server_hostname=_sni(target),
                                ssl_handshake_timeout=timeout),
        timeout,
    )
    del reader
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.transport.abort()  # no close_notify round trip: the answer is in


async def probe(server: str, target: ProbeTarget, timeout: float, context: ssl.SSLContext | None = None) -> ProbeResult:
    """One endpoint: connect, handshake, read the leaf; every failure becomes a reason, never an exception."""
    started = time.monotonic()
    context = context or _context()

    def failed(reason: str) -> ProbeResult:
        return ProbeResult(server, target.endpoint, False, time.monotonic() - started, reason=reason)

    try:
        der = await _handshake(target, context, timeout)
    except TimeoutError:
        return failed("timeout")
    except ConnectionRefusedError:
        return failed("refused")
    except ssl.SSLError:
        return failed("tls_error")
    except socket.gaierror:
        return failed("dns")
    except OSError:
        return failed("unreachable")
    if not der:
        return failed("no_certificate")
    try:
        leaf = parse_der(der)
    except ParseError:
        return failed("bad_certificate")
    verified = verify_leaf(der, target.ca_file, time.time()) if target.ca_file is not None else None
    return ProbeResult(server, target.endpoint, True, time.monotonic() - started, leaf, "", verified)


def targets_of(config: Config) -> list[tuple[str, ProbeTarget]]:
    return [(server.name, target) for server in config.servers for target in server.probes]


def run_round(targets: list[tuple[str, ProbeTarget]], timeout: float) -> list[ProbeResult]:
    """Every endpoint at once; returns after at most about one timeout."""
    if not targets:
        return []

    async def everything() -> list[ProbeResult]:
        context = _context()
        return list(await asyncio.gather(*(probe(server, target, timeout, context) for server, target in targets)))

    return asyncio.run(everything())


class Prober:
    """The probing thread: a round every interval, its results handed to `deliver` (which publishes them)."""

    def __init__(self, config: Config, deliver: Callable[[list[ProbeResult]], None]) -> None:
        self.targets = targets_of(config)
        self.interval = config.probe_interval
        self.timeout = config.probe_timeout
        self.deliver = deliver
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="prober", daemon=True)
        self.last: list[ProbeResult] = []
        self.rounds = 0

    def start(self) -> None:
        """Probing starts; with no endpoint configured the (empty) families are published once and nothing runs."""
        if self.targets:
            self.thread.start()
        else:
            self.deliver([])

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.timeout + 5)

    def round(self) -> list[ProbeResult]:
        """One round, published and logged; also what one-shot commands call."""
        results = run_round(self.targets, self.timeout)
        self._log_changes(results)
        self.deliver(results)
        self.last = results
        self.rounds += 1
        return results

    def _log_changes(self, results: list[ProbeResult]) -> None:
        """Once when an endpoint goes down or comes back, not every round."""
        before = {(r.server, r.endpoint): r.up for r in self.last}
        for result in results:
            was = before.get((result.server, result.endpoint))
            if not result.up and was is not False:
                log.warning("probe failed", extra={"server": result.server, "endpoint": result.endpoint,
                                                   "reason": result.reason})
            elif result.up and was is False:
                log.info("probe recovered", extra={"server": result.server, "endpoint": result.endpoint})

    def _run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.round()
            except Exception:  # a bug here must not end probing for the life of the process
                log.exception("probe round failed")
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))
