"""Writing a JKS keystore as keytool does, password and all: the lab's `tomcat/etc/keystore.jks`.

The private key is protected with Sun's JKS key protector (a SHA-1 keystream over the password),
and the file ends with keytool's integrity hash. The lab needs the password to build the file and
to serve its key on a loopback port; the exporter never sees it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sepm_exporter.sepm.keystore import JKS_MAGIC

# AlgorithmIdentifier of Sun's key protector: OID 1.3.6.1.4.1.42.2.17.1.1 and NULL parameters.
_KEY_PROTECTOR = bytes.fromhex("300e060a2b060104012a021101010500")
_WHITENER = b"Mighty Aphrodite"


def _password(password: str) -> bytes:
    return password.encode("utf-16-be")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _keystream_xor(password: bytes, salt: bytes, data: bytes) -> bytes:
    stream = b""
    digest = salt
    while len(stream) < len(data):
        digest = hashlib.sha1(password + digest).digest()
        stream += digest
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def protect_key(key: rsa.RSAPrivateKey, password: str) -> bytes:
    """The EncryptedPrivateKeyInfo keytool writes for a JKS private-key entry."""
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    secret = _password(password)
    salt = os.urandom(20)
    protected = salt + _keystream_xor(secret, salt, plain) + hashlib.sha1(secret + plain).digest()
    octets = b"\x04" + _der_length(len(protected)) + protected
    body = _KEY_PROTECTOR + octets
    return b"\x30" + _der_length(len(body)) + body


def _header(data: bytes, at: int) -> tuple[int, int]:
    """Start and end of the content of the DER element at `at`."""
    first = data[at + 1]
    if first < 0x80:
        return at + 2, at + 2 + first
    start = at + 2 + (first & 0x7F)
    return start, start + int.from_bytes(data[at + 2:start], "big")


def recover_key(encrypted: bytes, password: str) -> rsa.RSAPrivateKey:
    """The inverse, for the lab's TLS listener that serves what Tomcat would; ValueError on a wrong password."""
    start, _ = _header(encrypted, 0)
    if encrypted[start:start + len(_KEY_PROTECTOR)] != _KEY_PROTECTOR:
        raise ValueError("not a JKS-protected key")
    begin, end = _header(encrypted, start + len(_KEY_PROTECTOR))
    protected = encrypted[begin:end]
    salt, body, check = protected[:20], protected[20:-20], protected[-20:]
    secret = _password(password)
    plain = _keystream_xor(secret, salt, body)
    if hashlib.sha1(secret + plain).digest() != check:
        raise ValueError("wrong keystore password")
    key = serialization.load_der_private_key(plain, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("lab keys are RSA")
    return key


def _utf(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def write_jks(alias: str, key: rsa.RSAPrivateKey, chain: list[bytes], password: str,
              trusted: list[tuple[str, bytes]] | None = None) -> bytes:
    """A version-2 JKS with one private-key entry (chain: DER, leaf first) and optional trusted certificates."""
    stamp = struct.pack(">Q", int(time.time() * 1000))
    entries = [struct.pack(">I", 1) + _utf(alias) + stamp]
    protected = protect_key(key, password)
    entries[0] += struct.pack(">I", len(protected)) + protected + struct.pack(">I", len(chain))
    for der in chain:
        entries[0] += _utf("X.509") + struct.pack(">I", len(der)) + der
    for name, der in trusted or []:
        entries.append(struct.pack(">I", 2) + _utf(name) + stamp + _utf("X.509") + struct.pack(">I", len(der)) + der)
    body = struct.pack(">III", JKS_MAGIC, 2, len(entries)) + b"".join(entries)
    return body + hashlib.sha1(_password(password) + _WHITENER + body).digest()


def private_key_of(data: bytes, password: str) -> tuple[rsa.RSAPrivateKey, list[bytes]]:
    """The first private-key entry of a lab JKS: its key (needs the password) and its chain (DER)."""
    at = 16  # magic, version, count, and the tag: the lab writes the private-key entry first
    alias_length = struct.unpack(">H", data[at:at + 2])[0]
    at += 2 + alias_length + 8
    length = struct.unpack(">I", data[at:at + 4])[0]
    encrypted = data[at + 4:at + 4 + length]
    at += 4 + length
    count = struct.unpack(">I", data[at:at + 4])[0]
    at += 4
    chain = []
    for _ in range(count):
        kind = struct.unpack(">H", data[at:at + 2])[0]
        at += 2 + kind
        size = struct.unpack(">I", data[at:at + 4])[0]
        chain.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return recover_key(encrypted, password), chain
