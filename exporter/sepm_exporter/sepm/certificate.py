"""Certificate facts: what a monitor needs to know of an X.509 certificate, from PEM or DER bytes."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from sepm_exporter.sepm.reasons import ParseError, Reason, only_parse_errors

_BEGIN = b"-----BEGIN "
_END = b"-----END "
_CERTIFICATE_LABELS = (b"CERTIFICATE-----", b"X509 CERTIFICATE-----", b"TRUSTED CERTIFICATE-----")
MAX_CERTIFICATES = 64  # a server.crt is a leaf and perhaps a chain of two or three; a bundle of 64 is plenty


@dataclass(frozen=True)
class CertificateFacts:
    """One certificate, reduced to the facts that alerts and dashboards use."""

    subject: str
    issuer: str
    serial: str  # decimal: SEPM 12.1 serials are the Unix time of creation, readable as such
    not_before: float
    not_after: float
    signature_hash: str  # lowercase: sha1, sha256, md5, ... ("none" for EdDSA)
    key_algorithm: str  # rsa, ec, dsa, ed25519, ed448
    key_bits: int
    public_key_sha256: str  # the key's identity: unchanged by re-issuing on the same key


@dataclass(frozen=True)
class CertificateFile:
    """A certificate file: its leaf (the first certificate) and how many it holds."""

    leaf: CertificateFacts
    count: int


def _key_facts(cert: x509.Certificate) -> tuple[str, int, str]:
    key = cert.public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(spki).hexdigest()
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, digest
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size, digest
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, digest
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, digest
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456, digest
    return "unknown", 0, digest


def _signature_hash(cert: x509.Certificate) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return "none" if algorithm is None else algorithm.name.lower()


def facts_of(cert: x509.Certificate) -> CertificateFacts:
    """Reduce a parsed certificate; raises ParseError when a field cannot be decoded."""
    try:
        key_algorithm, key_bits, key_digest = _key_facts(cert)
        return CertificateFacts(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=str(cert.serial_number),
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
            signature_hash=_signature_hash(cert),
            key_algorithm=key_algorithm,
            key_bits=key_bits,
            public_key_sha256=key_digest,
        )
    except Exception as exc:  # cryptography raises InvalidVersion, ValueError, ...: all mean "bad"
        raise ParseError(Reason.BAD_CERTIFICATE, f"undecodable field: {type(exc).__name__}") from None


@functools.lru_cache(maxsize=512)
@only_parse_errors
def parse_der(data: bytes) -> CertificateFacts:
    """Facts of one DER certificate (as embedded in SyLink.xml).

    Cached by the bytes: every group file of a site embeds the same two or three certificates, so
    thousands of distinct SyLink.xml files still hold only a handful of distinct certificates.
    Failures are not cached (they raise), and they are rare.
    """
    try:
        cert = x509.load_der_x509_certificate(data)
    except Exception:  # InvalidVersion is no ValueError; no class may escape the parser
        raise ParseError(Reason.BAD_CERTIFICATE, "not a DER certificate") from None
    return facts_of(cert)


def count_pem_certificates(data: bytes) -> int:
    """How many CERTIFICATE blocks the PEM text holds (BEGIN with a matching END); linear.

    A scanner, not a regex: every search starts where the previous one ended, so thousands of
    BEGIN lines without an END cost one pass, not one pass each.
    """
    count = 0
    end = -1  # the first END at or after the current BEGIN: searched again only once passed
    at = data.find(_BEGIN)
    while at >= 0:
        label_at = at + len(_BEGIN)
        label = next((name for name in _CERTIFICATE_LABELS if data.startswith(name, label_at)), None)
        following = data.find(_BEGIN, label_at)
        if label is not None:
            if end < label_at:
                end = data.find(_END, label_at)
            if end < 0:
                break  # no END anywhere after: no later block can be complete either
            if following < 0 or end < following:
                count += 1
                if count > MAX_CERTIFICATES:
                    break
                following = data.find(_BEGIN, end)
        at = following
    return count


@only_parse_errors
def parse_certificate_file(data: bytes) -> CertificateFile:
    """Facts of a PEM (single or bundle) or DER certificate file; the leaf is the first one."""
    if not data.strip():
        raise ParseError(Reason.EMPTY, "empty certificate file")
    if b"-----BEGIN" in data:
        blocks = count_pem_certificates(data)
        if not blocks:
            raise ParseError(Reason.BAD_CERTIFICATE, "PEM file holds no CERTIFICATE block")
        if blocks > MAX_CERTIFICATES:
            raise ParseError(Reason.TOO_COMPLEX, f"more than {MAX_CERTIFICATES} certificates in one file")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except Exception:  # any class from the decoder means the same: it does not decode
            raise ParseError(Reason.BAD_CERTIFICATE, "PEM certificate block does not decode") from None
        if not certs:
            raise ParseError(Reason.BAD_CERTIFICATE, "PEM file holds no CERTIFICATE block")
        return CertificateFile(leaf=facts_of(certs[0]), count=len(certs))
    return CertificateFile(leaf=parse_der(data), count=1)
