"""Hostile and broken files, as pure byte generators: each targets one error reason."""

from __future__ import annotations

import base64
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


def backtracking_entity(spaces: int = 2000) -> bytes:
    """An unfinished entity declaration with a long run of blanks: a backtracking regex spent minutes here."""
    return b"<!DOCTYPE x [<!ENTITY" + b" " * spaces + b"x"


def many_attributes(count: int = 100_000) -> bytes:
    """A root element with 100,000 attributes (about 1 MB): canonicalising it took a minute."""
    attributes = b" ".join(b'a%d="1"' % i for i in range(count))
    return b'<?xml version="1.0"?>\n<ServerSettings ' + attributes + b"/>\n"


def many_certificates(count: int = 100_000) -> bytes:
    """100,000 empty embedded certificates (1.4 MB): one log line and one error count each, once."""
    body = b"<Certificate/>" * count
    return b'<?xml version="1.0"?>\n<ServerSettings><ServerCertList>' + body + b"</ServerCertList></ServerSettings>\n"


def deep_nesting(depth: int = 100_000) -> bytes:
    """Elements nested 100,000 deep: past libxml2's depth limit, refused as malformed."""
    return b"<ServerSettings>" + b"<a>" * depth + b"</a>" * depth + b"</ServerSettings>"


def huge_number(valid: bytes, digits: int = 401) -> bytes:
    """The heartbeat and randomization range as 401-digit numbers: they do not fit a float."""
    out = valid
    for name in (b"PullHeartbeatSeconds", b"PushHeartbeatSeconds", b"RandomizationRange"):
        at = out.find(name + b'="')
        if at >= 0:
            start = at + len(name) + 2
            out = out[:start] + b"9" * digits + out[out.index(b'"', start):]
    return out


def invalid_version(der: bytes) -> bytes:
    """One byte flipped: the version field says v8, and cryptography raises a class of its own for it."""
    at = der.index(b"\xa0\x03\x02\x01") + 4
    return der[:at] + b"\x07" + der[at + 1:]


def embedded_invalid_version(valid: bytes) -> bytes:
    """A SyLink.xml whose first embedded certificate has a flipped version byte; still base64."""
    start = valid.index(b">", valid.index(b"<Certificate ")) + 1
    end = valid.index(b"</Certificate>", start)
    der = base64.b64decode(b"".join(valid[start:end].replace(b"&#13;", b"").split()))
    return valid[:start] + base64.b64encode(invalid_version(der)) + valid[end:]


def pem_invalid_version(valid: bytes) -> bytes:
    """server.crt (PEM) with the leaf's version byte flipped."""
    begin = valid.index(b"-----BEGIN CERTIFICATE-----") + len(b"-----BEGIN CERTIFICATE-----")
    end = valid.index(b"-----END CERTIFICATE-----", begin)
    der = invalid_version(base64.b64decode(b"".join(valid[begin:end].split())))
    return valid[:begin] + b"\n" + base64.encodebytes(der) + valid[end:]


def pem_begin_flood(size: int = 280_000) -> bytes:
    """server.crt as BEGIN lines and nothing else: a lazy regex scanned the rest of the file from each one."""
    line = b"-----BEGIN CERTIFICATE-----\n"
    return line * (size // len(line))


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
    "backtracking-entity": "entity_expansion",
    "many-attributes": "too_complex",
    "many-certificates": "too_complex",
    "deep-nesting": "malformed_xml",
}

# A SyLink.xml that still parses, with one embedded certificate broken: a problem, not a failure.
PARTIAL_KINDS: dict[str, str] = {
    "corrupt-embedded-certificate": "bad_certificate",
    "embedded-invalid-version": "bad_certificate",
    "huge-number": "bad_number",
}

# For server.crt rather than SyLink.xml.
CERTIFICATE_KINDS: dict[str, str] = {
    "pem-garbage": "bad_certificate",
    "der-fragment": "bad_certificate",
    "pem-invalid-version": "bad_certificate",
    "pem-begin-flood": "bad_certificate",
}

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
    "fifo": "not_a_file",  # a named pipe: opening it for reading would wait for a writer forever
    "link-outside": "outside_root",  # a link to a file outside the watched root (think /etc/shadow)
    "link-to-key": "outside_root",  # a link to the server's private key
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
        case "backtracking-entity":
            return backtracking_entity()
        case "many-attributes":
            return many_attributes()
        case "many-certificates":
            return many_certificates()
        case "deep-nesting":
            return deep_nesting()
        case "huge-number":
            return huge_number(valid)
        case "embedded-invalid-version":
            return embedded_invalid_version(valid)
        case "pem-invalid-version":
            return pem_invalid_version(valid)
        case "pem-begin-flood":
            return pem_begin_flood()
    raise ValueError(f"unknown hostile kind {kind!r}; known: {', '.join(sorted(KINDS))}")


MUTATIONS = ("bit-flips", "truncation", "repeated-fragment", "huge-number", "spliced")


def mutate(valid: bytes, seed: int, how: str | None = None) -> bytes:
    """A real file damaged at random (reproducibly, by `seed`): what a fuzzer feeds the parsers.

    Bit flips anywhere, a truncation, a fragment repeated many times (the shape that finds
    superlinear code), every number swapped for a 401-digit one, or two slices of the file joined.
    """
    rng = random.Random(seed)
    how = how if how is not None else rng.choice(MUTATIONS)
    data = bytearray(valid)
    match how:
        case "bit-flips":
            for _ in range(rng.randint(1, 8)):
                if data:
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            return bytes(data)
        case "truncation":
            return bytes(data[: rng.randrange(len(data) + 1)])
        case "repeated-fragment":
            start = rng.randrange(len(data) + 1)
            fragment = bytes(data[start: start + rng.randint(1, 64)])
            return bytes(data[:start]) + fragment * rng.randint(2, 20_000 // max(1, len(fragment))) + bytes(data[start:])
        case "huge-number":
            out, run = bytearray(), bytearray()
            for byte in data + b" ":
                if 0x30 <= byte <= 0x39:
                    run.append(byte)
                    continue
                out += b"9" * 401 if run and rng.random() < 0.5 else run
                run.clear()
                out.append(byte)
            return bytes(out[:-1])
        case "spliced":
            a, b = sorted(rng.randrange(len(data) + 1) for _ in range(2))
            c = rng.randrange(len(data) + 1)
            return bytes(data[:a]) + bytes(data[c:]) + bytes(data[a:b])
    raise ValueError(f"unknown mutation {how!r}; known: {', '.join(MUTATIONS)}")


def padded_valid(valid: bytes, size: int) -> bytes:
    """A valid SyLink.xml of (about) `size` bytes: more servers in the list, as a big site would have.

    The baseline for "how much slower is a hostile file than a valid one of the same size". Past
    the tree caps the padded file is itself refused (too_complex), as a real one would be.
    """
    close = valid.find(b"</ServerPriorityBlock>")
    if close < 0 or size <= len(valid):
        return valid
    lines = []
    total = len(valid)
    index = 0
    while total < size:
        line = (b'        <Server Address="10.%d.%d.%d" HttpPort="80" HttpsPort="443" HttpsVerifyCA="0" '
                b'VerifySignatures="1"/>\n' % (index >> 16 & 255, index >> 8 & 255, index & 255))
        lines.append(line)
        total += len(line)
        index += 1
    return valid[:close] + b"".join(lines) + valid[close:]


def padded_pem(valid: bytes, size: int) -> bytes:
    """A valid PEM file of (about) `size` bytes: explanatory text before the block, as OpenSSL writes."""
    if size <= len(valid):
        return valid
    line = b"Certificate: text that openssl x509 -text puts before the block; readers skip it\n"
    return line * ((size - len(valid)) // len(line) + 1) + valid
