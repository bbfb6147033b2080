"""SyLink.xml facts: mode, heartbeat, server list and embedded certificates, never the Kcs secret."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from dataclasses import dataclass

from lxml import etree

from sepm_exporter.sepm.certificate import CertificateFacts, parse_der
from sepm_exporter.sepm.reasons import ParseError, Reason, only_parse_errors
from sepm_exporter.sepm.xmlsafe import DEFAULT_MAX_BYTES, canonical_sha256, local_name, parse_xml

_WHITESPACE = re.compile(r"\s+")

# Attribute names that carry a port. `HttpsPort` is inferred, not seen in a sample file: kept here
# as knowledge a later release can extend without touching the parser.
HTTP_PORT_ATTRIBUTES = ("HttpPort",)
HTTPS_PORT_ATTRIBUTES = ("HttpsPort", "HTTPSPort", "SslPort")

MAX_CERTIFICATES = 64  # a group file embeds two or three; one per server of a large site at most
MAX_SECONDS = 10**9  # about 31 years: any heartbeat or range above is not a setting but damage
MAX_PORT = 65535
_DIGITS = 10  # more digits than this is refused before int(): no 5,000-digit integer reaches later steps


@dataclass(frozen=True)
class ServerEntry:
    """One management server a client may contact, in priority order."""

    priority: str
    address: str
    http_port: int | None
    https_port: int | None
    verify_signatures: bool | None  # VerifySignatures="1"/"0"; None when the attribute is absent or odd


@dataclass(frozen=True)
class EmbeddedCertificate:
    """A certificate from ServerCertList; `facts` is None when it does not decode."""

    name: str
    facts: CertificateFacts | None


@dataclass(frozen=True)
class Problem:
    """A part of a file that failed while the rest was read."""

    reason: Reason
    detail: str


@dataclass(frozen=True)
class SyLinkFacts:
    """Everything the exporter publishes about one SyLink.xml."""

    sha256: str
    canonical_sha256: str
    domain_id: str
    mode: str  # "push", "pull" or "" when the file does not say
    heartbeat_seconds: int | None
    randomization_seconds: int
    servers: tuple[ServerEntry, ...]
    certificates: tuple[EmbeddedCertificate, ...]
    preferred_group: str
    problems: tuple[Problem, ...]

    @functools.cached_property
    def key_digests(self) -> frozenset[str]:
        """Public keys the file lets a client trust (computed once: clients share parsed facts)."""
        return frozenset(c.facts.public_key_sha256 for c in self.certificates if c.facts is not None)


def _int_attribute(
    element: etree._Element | None, *names: str, limit: int = MAX_SECONDS, problems: list[Problem] | None = None
) -> int | None:
    """The first of `names` present, as a whole number in 0..limit; None otherwise.

    Text that is not a number says nothing (None, as before); a number out of range is damage,
    noted in `problems` (bad_number) so the file shows up, and never passed on: downstream steps
    turn these into floats, and a 401-digit integer does not fit one.
    """
    if element is None:
        return None
    for name in names:
        value = element.get(name)
        if value is None:
            continue
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isascii() or not digits.isdigit():
            return None
        number = int(text) if len(digits) <= _DIGITS else limit + 1
        if 0 <= number <= limit:
            return number
        if problems is not None:
            shown = text if len(text) <= 16 else f"{text[:12]}... ({len(text)} characters)"
            problems.append(Problem(Reason.BAD_NUMBER, f"{name}={shown} is not in 0..{limit}; ignored"))
        return None
    return None


def _flag(value: str | None) -> bool | None:
    text = (value or "").strip()
    return True if text == "1" else False if text == "0" else None


def _first(root: etree._Element, name: str) -> etree._Element | None:
    for element in root.iter():
        if local_name(element) == name:
            return element
    return None


def _all(root: etree._Element, name: str) -> list[etree._Element]:
    return [e for e in root.iter() if local_name(e) == name]


def decode_embedded(text: str) -> bytes:
    """Base64 as SyLink wraps it: 76-column lines ending in `&#13;` and a newline."""
    return base64.b64decode(_WHITESPACE.sub("", text), validate=True)


def _certificates(elements: list[etree._Element]) -> tuple[tuple[EmbeddedCertificate, ...], tuple[Problem, ...]]:
    """The embedded certificates, and at most one problem for all that fail.

    One problem per file, not per certificate: the error counter counts files, and a file with a
    thousand broken certificates must not write a thousand log lines.
    """
    certificates: list[EmbeddedCertificate] = []
    failed: list[str] = []
    for index, element in enumerate(elements):
        name = element.get("Name") or f"#{index + 1}"
        try:
            facts: CertificateFacts | None = parse_der(decode_embedded(element.text or ""))
        except (binascii.Error, ValueError):
            facts = None
            failed.append(f"{name!r}: not base64")
        except ParseError as exc:
            facts = None
            failed.append(f"{name!r}: {exc.detail}")
        certificates.append(EmbeddedCertificate(name=name, facts=facts))
    if not failed:
        return tuple(certificates), ()
    detail = f"embedded certificate {failed[0]}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
    return tuple(certificates), (Problem(Reason.BAD_CERTIFICATE, detail),)


def _servers(root: etree._Element, problems: list[Problem]) -> tuple[ServerEntry, ...]:
    entries: list[ServerEntry] = []
    for block in _all(root, "ServerPriorityBlock"):
        priority = block.get("Name", "")
        for server in block:
            if local_name(server) != "Server":
                continue
            entries.append(
                ServerEntry(
                    priority=priority,
                    address=server.get("Address", ""),
                    http_port=_int_attribute(server, *HTTP_PORT_ATTRIBUTES, limit=MAX_PORT, problems=problems),
                    https_port=_int_attribute(server, *HTTPS_PORT_ATTRIBUTES, limit=MAX_PORT, problems=problems),
                    verify_signatures=_flag(server.get("VerifySignatures")),
                )
            )
    return tuple(entries)


@only_parse_errors
def parse_sylink(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> SyLinkFacts:
    """Facts of a SyLink.xml; ParseError (and nothing else) when the file as a whole is unusable.

    Size, DTD and tree caps are checked before the canonical form is computed: C14N is the one
    step whose cost grows faster than the file.
    """
    root = parse_xml(data, max_bytes)
    if local_name(root) != "ServerSettings":
        raise ParseError(Reason.NOT_SYLINK, f"root element is {local_name(root)!r}, not 'ServerSettings'")
    embedded = _all(root, "Certificate")
    if len(embedded) > MAX_CERTIFICATES:
        raise ParseError(Reason.TOO_COMPLEX, f"{len(embedded)} embedded certificates (cap {MAX_CERTIFICATES})")
    numbers: list[Problem] = []
    setting = _first(root, "AgentCommunicationSetting")
    mode = (setting.get("CommunicationMode", "") if setting is not None else "").strip().lower()
    if mode == "push":
        heartbeat = _int_attribute(setting, "PushHeartbeatSeconds", "PullHeartbeatSeconds", problems=numbers)
    else:
        heartbeat = _int_attribute(setting, "PullHeartbeatSeconds", "PushHeartbeatSeconds", problems=numbers)
    randomization = 0
    if setting is not None and setting.get("RandomizationEnabled", "0").strip() == "1":
        randomization = _int_attribute(setting, "RandomizationRange", problems=numbers) or 0
    register = _first(root, "RegisterClient")
    servers = _servers(root, numbers)
    canonical = canonical_sha256(root)
    certificates, problems = _certificates(embedded)
    if numbers:  # one per file, as for certificates
        extra = f" (and {len(numbers) - 1} more)" if len(numbers) > 1 else ""
        problems += (Problem(Reason.BAD_NUMBER, numbers[0].detail + extra),)
    return SyLinkFacts(
        sha256=hashlib.sha256(data).hexdigest(),
        canonical_sha256=canonical,
        domain_id=root.get("DomainId", ""),
        mode=mode if mode in ("push", "pull") else "",
        heartbeat_seconds=heartbeat,
        randomization_seconds=randomization,
        servers=servers,
        certificates=certificates,
        preferred_group=register.get("PreferredGroup", "") if register is not None else "",
        problems=problems,
    )
