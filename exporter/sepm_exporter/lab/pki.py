"""Keys and self-signed certificates as SEPM makes them, including the SHA-1 era ones.

`cryptography` refuses to sign certificates with SHA-1 or MD5, yet a 12.1-era SEPM holds exactly
such a certificate. The lab signs with SHA-256, swaps the algorithm OID (same length in DER, so
no length byte moves) and re-signs the TBS bytes with the legacy hash.
"""

from __future__ import annotations

import datetime as dt
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# DER of the AlgorithmIdentifier OIDs (1.2.840.113549.1.1.x): all nine content bytes long.
_OID_PREFIX = bytes.fromhex("06092a864886f70d0101")
_OID_LAST = {"sha256": 0x0B, "sha1": 0x05, "md5": 0x04}
_HASHES: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1(), "md5": hashes.MD5()}


def new_key(bits: int) -> rsa.RSAPrivateKey:
    """An RSA key; 1024 bits for a legacy install, 2048 for a current one, 512 for a hostile one."""
    if bits < 1024:
        return weak_key(bits)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _probably_prime(n: int, rng: random.Random, rounds: int = 32) -> bool:
    if n < 2:
        return False
    for small in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def weak_key(bits: int, seed: int = 512) -> rsa.RSAPrivateKey:
    """A key too short for `cryptography` to generate (it refuses under 1024 bits), built from primes.

    Old appliances and hand-made certificates still carry such keys; the lab needs one to test them.
    """
    rng = random.Random(seed)
    e = 65537

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if (candidate - 1) % e and _probably_prime(candidate, rng):
                return candidate

    p, q = prime(), prime()
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key()


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The private key as SEPM stores it in server.key (unencrypted PEM)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def load_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Read back a lab server.key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("lab keys are RSA")
    return key


def self_signed(
    key: rsa.RSAPrivateKey,
    host: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    signature_hash: str = "sha256",
    serial: int | None = None,
) -> bytes:
    """A SEPM-style self-signed server certificate (DER): O=symantec.com, OU=scm, CN=<host>."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "symantec.com"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "scm"),
            x509.NameAttribute(NameOID.COMMON_NAME, host),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else int(not_before.timestamp()))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    if signature_hash == "sha256":
        return der
    return _resign(der, key, signature_hash)


def _resign(der: bytes, key: rsa.RSAPrivateKey, signature_hash: str) -> bytes:
    old_oid = _OID_PREFIX + bytes([_OID_LAST["sha256"]])
    new_oid = _OID_PREFIX + bytes([_OID_LAST[signature_hash]])
    if der.count(old_oid) != 2:  # once in the TBS, once in the outer signatureAlgorithm
        raise ValueError("unexpected certificate layout")
    swapped = der.replace(old_oid, new_oid)
    tbs = x509.load_der_x509_certificate(swapped).tbs_certificate_bytes
    signature = key.sign(tbs, padding.PKCS1v15(), _HASHES[signature_hash])
    old_signature_length = key.key_size // 8
    # The signature BIT STRING is the last element; an RSA signature always has the modulus length.
    return swapped[:-old_signature_length] + signature


def pem(der: bytes) -> bytes:
    """PEM text of a DER certificate, as apache/conf/ssl/server.crt holds it."""
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def issued(key: rsa.RSAPrivateKey, subject: str, issuer_key: rsa.RSAPrivateKey, issuer: str,
           not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    """A certificate (DER) for `subject` signed by a lab CA: for client-certificate tests of the web endpoint."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def ca(key: rsa.RSAPrivateKey, name: str, not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    """A self-signed CA certificate (DER) with the CA basic constraint, as TLS libraries require."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
