"""Certificate chains of a Java keystore (JKS, JCEKS) or a PKCS#12 file, read without any password.

Tomcat serves SEPM's certificate from `tomcat/etc/keystore.jks`. JKS stores every certificate in
the clear: the password only guards the trailing integrity hash and each private key, and this
reader checks neither and decrypts nothing, so it needs no password and never holds key material.

A small linear reader of the documented layout rather than `pyjks`: pyjks pulls in `twofish`, a C
extension without wheels for Windows, only to decrypt what this reader deliberately leaves alone.
Every length and count is capped before it is used, so hostile bytes cost at most one pass.

JKS (`FEEDFEED`, versions 1 and 2; JCEKS `CECECECE` shares it)::

    magic u32, version u32, count u32, then per entry:
      tag u32 (1 private key, 2 trusted certificate, 3 JCEKS secret key), alias UTF, timestamp u64,
      tag 1: protected key (u32 length + bytes), chain count u32, certificates
      tag 2: one certificate
      certificate: [v2: type UTF "X.509"], u32 length, DER
    then a 20-byte SHA-1 over the password and everything before it (not checked here)

PKCS#12 is walked as DER down to its certificate bags; bags in an `encryptedData` content (what
keytool and openssl write by default) cannot be read without the password: that is a file error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sepm_exporter.sepm.certificate import CertificateFacts, CertificateFile, parse_der
from sepm_exporter.sepm.reasons import ParseError, Reason

JKS_MAGIC = 0xFEEDFEED
JCEKS_MAGIC = 0xCECECECE
MAX_ENTRIES = 1024
MAX_CHAIN = 16
MAX_ALIAS = 1024
MAX_BLOB = 1 << 20  # one key or certificate: far above any real one

_PRIVATE_KEY, _TRUSTED_CERTIFICATE, _SECRET_KEY = 1, 2, 3


@dataclass(frozen=True)
class KeystoreEntry:
    """One entry: its alias, whether it holds a private key, and its certificate chain (leaf first)."""

    alias: str
    private_key: bool
    chain: tuple[CertificateFacts, ...]


def _bad(detail: str) -> ParseError:
    return ParseError(Reason.BAD_KEYSTORE, detail)


class _Reader:
    """Big-endian fields from a byte string; every read is bounds-checked."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise _bad("keystore ends inside an entry (truncated)")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def blob(self, cap: int, what: str) -> bytes:
        length = self.u32()
        if length > cap:
            raise _bad(f"{what} length {length} over the {cap}-byte cap")
        return self.take(length)

    def utf(self) -> str:
        length = self.u16()
        if length > MAX_ALIAS:
            raise _bad(f"string length {length} over the {MAX_ALIAS}-byte cap")
        # Java's modified UTF-8 differs from UTF-8 only for NUL and astral characters: replace, never fail.
        return self.take(length).decode("utf-8", errors="replace")


def _certificate(reader: _Reader, version: int) -> CertificateFacts:
    if version == 2:
        kind = reader.utf()
        if kind != "X.509":
            raise _bad(f"certificate of type {kind[:32]!r}, not X.509")
    return parse_der(reader.blob(MAX_BLOB, "certificate"))


def read_jks(data: bytes) -> list[KeystoreEntry]:
    """Every entry's chain of a JKS or JCEKS keystore; ParseError(BAD_KEYSTORE) on anything malformed."""
    reader = _Reader(data)
    magic = reader.u32()
    if magic not in (JKS_MAGIC, JCEKS_MAGIC):
        raise _bad("not a JKS or JCEKS keystore (magic)")
    version = reader.u32()
    if version not in (1, 2):
        raise _bad(f"unknown keystore version {version}")
    count = reader.u32()
    if count > MAX_ENTRIES:
        raise _bad(f"{count} entries over the {MAX_ENTRIES}-entry cap")
    entries: list[KeystoreEntry] = []
    for _ in range(count):
        tag = reader.u32()
        alias = reader.utf()
        reader.take(8)  # creation time: not a fact anyone alerts on
        if tag == _PRIVATE_KEY:
            reader.blob(MAX_BLOB, "protected key")  # skipped, never decrypted
            chain_length = reader.u32()
            if chain_length > MAX_CHAIN:
                raise _bad(f"chain of {chain_length} certificates over the {MAX_CHAIN} cap")
            chain = tuple(_certificate(reader, version) for _ in range(chain_length))
            entries.append(KeystoreEntry(alias, True, chain))
        elif tag == _TRUSTED_CERTIFICATE:
            entries.append(KeystoreEntry(alias, False, (_certificate(reader, version),)))
        elif tag == _SECRET_KEY:
            # A JCEKS secret key is a serialized Java object of unknown length: nothing after it can be found.
            raise _bad("JCEKS secret-key entry: not readable without Java serialization")
        else:
            raise _bad(f"unknown entry tag {tag}")
    if len(data) - reader.at != 20:
        raise _bad("keystore does not end with its 20-byte integrity hash")
    return entries


# -- PKCS#12 ------------------------------------------------------------------------------------

_OID_DATA = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_ENCRYPTED_DATA = bytes.fromhex("2a864886f70d010706")  # 1.2.840.113549.1.7.6
_OID_CERT_BAG = bytes.fromhex("2a864886f70d010c0a0103")  # 1.2.840.113549.1.12.10.1.3
_OID_KEY_BAGS = (bytes.fromhex("2a864886f70d010c0a0101"), bytes.fromhex("2a864886f70d010c0a0102"))
_OID_X509 = bytes.fromhex("2a864886f70d01091601")  # 1.2.840.113549.1.9.22.1
_MAX_DEPTH_ITEMS = 4096


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `at`; definite lengths only."""
    if at + 2 > len(data):
        raise _bad("PKCS#12 ends inside an element")
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or at + n > len(data):
            raise _bad("PKCS#12 element with an unsupported length (indefinite or over 4 bytes)")
        length = int.from_bytes(data[at:at + n], "big")
        at += n
    if at + length > len(data):
        raise _bad("PKCS#12 element runs past the end (truncated)")
    return tag, at, at + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, content, stop = _tlv(data, start)
        if stop > end:
            raise _bad("PKCS#12 element runs past its parent")
        out.append((tag, content, stop))
        if len(out) > _MAX_DEPTH_ITEMS:
            raise _bad("PKCS#12 holds too many elements")
        start = stop
    return out


def _explicit(data: bytes, element: tuple[int, int, int], tag: int) -> tuple[int, int, int]:
    """The single element inside an explicit context tag."""
    got, start, end = element
    if got != tag:
        raise _bad("PKCS#12 structure is not as specified")
    inner = _children(data, start, end)
    if len(inner) != 1:
        raise _bad("PKCS#12 structure is not as specified")
    return inner[0]


def read_pkcs12(data: bytes) -> list[KeystoreEntry]:
    """Certificates of the PKCS#12 bags that are stored in the clear; no MAC check, no decryption."""
    tag, start, end = _tlv(data, 0)
    if tag != 0x30:
        raise _bad("not a PKCS#12 file")
    pfx = _children(data, start, end)
    if len(pfx) < 2 or pfx[0][0] != 0x02:
        raise _bad("not a PKCS#12 file")
    auth_safe = _children(data, pfx[1][1], pfx[1][2])
    if len(auth_safe) != 2 or data[auth_safe[0][1]:auth_safe[0][2]] != _OID_DATA:
        raise _bad("PKCS#12 authenticated safe is not plain data (public-key integrity mode is not supported)")
    octets = _explicit(data, auth_safe[1], 0xA0)
    if octets[0] != 0x04:
        raise _bad("PKCS#12 authenticated safe is not an OCTET STRING")
    sequence, safe_start, safe_end = _tlv(data, octets[1])
    if sequence != 0x30:
        raise _bad("PKCS#12 authenticated safe is not a SEQUENCE")
    contents = _children(data, safe_start, safe_end)
    entries: list[KeystoreEntry] = []
    encrypted = 0
    keys = 0
    for info in contents:
        parts = _children(data, info[1], info[2])
        if len(parts) < 1:
            raise _bad("PKCS#12 content without a type")
        kind = data[parts[0][1]:parts[0][2]]
        if kind == _OID_ENCRYPTED_DATA:
            encrypted += 1
            continue
        if kind != _OID_DATA or len(parts) != 2:
            raise _bad("PKCS#12 content of an unknown type")
        safe_octets = _explicit(data, parts[1], 0xA0)
        if safe_octets[0] != 0x04:
            raise _bad("PKCS#12 data content is not an OCTET STRING")
        _, bags_start, bags_end = _tlv(data, safe_octets[1])
        for bag in _children(data, bags_start, bags_end):
            fields = _children(data, bag[1], bag[2])
            if len(fields) < 2:
                raise _bad("PKCS#12 bag without a value")
            bag_id = data[fields[0][1]:fields[0][2]]
            if bag_id in _OID_KEY_BAGS:
                keys += 1
                continue
            if bag_id != _OID_CERT_BAG:
                continue
            _, bag_start, bag_end = _explicit(data, fields[1], 0xA0)
            cert_bag = _children(data, bag_start, bag_end)
            if len(cert_bag) != 2 or data[cert_bag[0][1]:cert_bag[0][2]] != _OID_X509:
                continue  # an SDSI certificate or other kind: not X.509
            der = _explicit(data, cert_bag[1], 0xA0)
            if der[0] != 0x04:
                raise _bad("PKCS#12 certificate bag does not hold an OCTET STRING")
            entries.append(KeystoreEntry("", False, (parse_der(data[der[1]:der[2]]),)))
    if not entries and encrypted:
        raise ParseError(Reason.KEYSTORE_ENCRYPTED,
                         "PKCS#12 certificates are encrypted under the store password; give a PEM copy in servers[].certificates")
    if entries and keys:  # the bag order is the chain order in every writer seen; the first one is the leaf
        first = entries[0]
        entries[0] = KeystoreEntry(first.alias, True, first.chain)
    return entries


def read_keystore(data: bytes) -> list[KeystoreEntry]:
    """JKS, JCEKS or PKCS#12, told apart by their first bytes."""
    if not data:
        raise ParseError(Reason.EMPTY, "empty keystore")
    if len(data) >= 4 and int.from_bytes(data[:4], "big") in (JKS_MAGIC, JCEKS_MAGIC):
        return read_jks(data)
    if data[0] == 0x30:
        return read_pkcs12(data)
    raise _bad("neither a Java keystore nor a PKCS#12 file")


def parse_keystore_file(data: bytes) -> CertificateFile:
    """The keystore as a certificate file: its leaf is the first private-key entry's first certificate
    (what Tomcat serves), else the first certificate; the count is every certificate it holds."""
    entries = read_keystore(data)
    chains = [e.chain for e in entries if e.private_key and e.chain] or [e.chain for e in entries if e.chain]
    if not chains:
        raise _bad("keystore holds no certificate")
    return CertificateFile(leaf=chains[0][0], count=sum(len(e.chain) for e in entries))
