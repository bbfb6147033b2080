"""Hostile and broken files, as pure byte generators: each targets one error reason."""

from __future__ import annotations

import codecs
import random

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<ServerSettings>&lol9;</ServerSettings>\n"
)

EXTERNAL_ENTITY_FILE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b"<ServerSettings>&xxe;</ServerSettings>\n"
)

EXTERNAL_ENTITY_NETWORK = (
    b'<?xml version="1.0"?>\n<!DOCTYPE s [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>\n'
    b"<ServerSettings>&xxe;</ServerSettings>\n"
)

PARAMETER_ENTITY_DTD = (
    b'<?xml version="1.0"?>\n<!DOCTYPE s [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>\n'
    b"<ServerSettings/>\n"
)

PLAIN_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE ServerSettings [<!ELEMENT ServerSettings ANY>]>\n<ServerSettings/>\n'

WRONG_ENCODING = '<?xml version="1.0" encoding="UTF-8"?>\n<ServerSettings DomainId="caf\xe9"/>\n'.encode("latin-1")

NOT_SYLINK = b'<?xml version="1.0" encoding="UTF-8"?>\n<html><body>error page</body></html>\n'

PEM_GARBAGE = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


def random_bytes(size: int, seed: int = 7) -> bytes:
    """Noise that cannot be mistaken for XML: it starts with a byte no XML document starts with."""
    rng = random.Random(seed)
    return b"\x00" + bytes(rng.getrandbits(8) for _ in range(size - 1))


def encrypted_pkcs12() -> bytes:
    """A PKCS#12 as keytool and openssl write it by default: certificates encrypted under the password."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from sepm_exporter.lab import pki

    key = pki.weak_key(512)
    now = dt.datetime.now(dt.UTC)
    cert = x509.load_der_x509_certificate(pki.self_signed(key, "SEPM", now, now + dt.timedelta(days=1)))
    return pkcs12.serialize_key_and_certificates(b"scm", key, cert, None, BestAvailableEncryption(b"lab-secret"))


def truncated(data: bytes, fraction: float) -> bytes:
    """The first part of a file, as a reader sees it while the writer is half-way."""
    return data[: max(1, int(len(data) * fraction))]


def huge(size: int) -> bytes:
    """A well-formed but oversized file: the size cap must refuse it before parsing."""
    head = b'<?xml version="1.0"?>\n<ServerSettings><Pad>'
    tail = b"</Pad></ServerSettings>\n"
    return head + b"A" * max(0, size - len(head) - len(tail)) + tail


KINDS: dict[str, str] = {
    "billion-laughs": "entity_expansion",
    "external-entity": "external_entity",
    "external-entity-network": "external_entity",
    "parameter-entity": "external_entity",
    "dtd": "unsafe_xml",
    "truncated": "truncated_xml",
    "random": "malformed_xml",
    "empty": "empty",
    "huge": "too_large",
    "wrong-encoding": "bad_encoding",
    "not-sylink": "not_sylink",
    "huge-64m": "too_large",
}

# A SyLink.xml that still parses, with one embedded certificate broken: a problem, not a failure.
PARTIAL_KINDS: dict[str, str] = {"corrupt-embedded-certificate": "bad_certificate"}

# For server.crt rather than SyLink.xml.
CERTIFICATE_KINDS: dict[str, str] = {"pem-garbage": "bad_certificate", "der-fragment": "bad_certificate"}

# For tomcat/etc/keystore.jks: every one a file error with a reason, never a crash or a long parse.
KEYSTORE_KINDS: dict[str, str] = {
    "keystore-truncated": "bad_keystore",  # half a JKS: ends inside an entry
    "keystore-entry-count": "bad_keystore",  # a JKS claiming 4 billion entries: refused by the cap
    "keystore-noise": "bad_keystore",  # neither JKS nor PKCS#12
    "keystore-pkcs12-encrypted": "keystore_encrypted",  # a PKCS#12 that hides its certificates under the password
}

# Damage done to the file system rather than to the bytes; the lab applies these itself.
FS_KINDS: dict[str, str] = {
    "symlink-loop": "symlink_loop",
    "directory": "not_a_file",
    "unreadable": "unreadable",
}

# Valid re-encodings of a SyLink.xml: each must give the same canonical hash as the original.
VARIANTS = ("utf8-bom", "utf16-le", "utf16-be", "crlf")

DER_FRAGMENT = b"\x30\x82\x03\x1f\x30\x82\x02\x07\xa0\x03\x02\x01"


def corrupt_embedded_certificate(valid: bytes) -> bytes:
    """Still base64, no longer DER: the first embedded certificate's body is overwritten."""
    start = valid.index(b"MII")
    return valid[:start + 8] + b"A" * 48 + valid[start + 56:]


def variant(kind: str, valid: bytes) -> bytes:
    """The same document as Windows tools may write it: BOM, UTF-16 either way round, CRLF."""
    if valid.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = valid.decode("utf-16").replace('encoding="UTF-16"', 'encoding="UTF-8"', 1)
    else:
        text = valid.decode("utf-8-sig")
    match kind:
        case "utf8-bom":
            return codecs.BOM_UTF8 + text.encode("utf-8")
        case "utf16-le" | "utf16-be":
            text = text.replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
            bom = codecs.BOM_UTF16_LE if kind == "utf16-le" else codecs.BOM_UTF16_BE
            return bom + text.encode("utf-16-le" if kind == "utf16-le" else "utf-16-be")
        case "crlf":
            return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    raise ValueError(f"unknown variant {kind!r}; known: {', '.join(VARIANTS)}")


def payload(kind: str, valid: bytes) -> bytes:
    """The bytes of one catalogue entry; `valid` is a real SyLink.xml to damage where that applies."""
    match kind:
        case "billion-laughs":
            return BILLION_LAUGHS
        case "external-entity":
            return EXTERNAL_ENTITY_FILE
        case "external-entity-network":
            return EXTERNAL_ENTITY_NETWORK
        case "parameter-entity":
            return PARAMETER_ENTITY_DTD
        case "dtd":
            return PLAIN_DTD
        case "truncated":
            return truncated(valid, 0.5)
        case "random":
            return random_bytes(4096)
        case "empty":
            return b""
        case "huge":
            return huge(5 * 1024 * 1024)
        case "wrong-encoding":
            return WRONG_ENCODING
        case "not-sylink":
            return NOT_SYLINK
        case "huge-64m":
            return huge(64 * 1024 * 1024)
        case "corrupt-embedded-certificate":
            return corrupt_embedded_certificate(valid)
        case "pem-garbage":
            return PEM_GARBAGE
        case "der-fragment":
            return DER_FRAGMENT
        case "keystore-truncated":
            return truncated(valid, 0.5)
        case "keystore-entry-count":
            return valid[:8] + b"\xff\xff\xff\xff" + valid[12:]
        case "keystore-noise":
            return random_bytes(2048)
        case "keystore-pkcs12-encrypted":
            return encrypted_pkcs12()
    raise ValueError(f"unknown hostile kind {kind!r}; known: {', '.join(sorted(KINDS))}")
