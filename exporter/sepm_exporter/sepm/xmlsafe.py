"""Hostile-proof XML: refuse DTDs and entities before parsing, tell half-written from garbage.

SEPM files arrive over shares from machines we do not control; a parser that expands entities
or loads DTDs can be made to eat memory (billion laughs) or read local files (XXE).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from typing import Any

from lxml import etree

from sepm_exporter.sepm.reasons import ParseError, Reason

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_EXTERNAL = re.compile(rb"<!ENTITY\s+%?\s*[^\s>]*\s+(?:SYSTEM|PUBLIC)\b", re.IGNORECASE)


def _as_utf8_for_scan(data: bytes) -> bytes:
    """The bytes as UTF-8 so that DTD checks also see UTF-16 input; lossy on purpose."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace").encode("utf-8", errors="replace")
    return data


def _refuse_dtd(data: bytes) -> None:
    scan = _as_utf8_for_scan(data)
    if not _DOCTYPE.search(scan):
        return
    if _EXTERNAL.search(scan):
        raise ParseError(Reason.EXTERNAL_ENTITY, "external entity declared (SYSTEM/PUBLIC); not loaded")
    if _ENTITY.search(scan):
        raise ParseError(Reason.ENTITY_EXPANSION, "entity declarations present; not expanded")
    raise ParseError(Reason.UNSAFE_XML, "document type declaration present; not processed")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=True,
        remove_pis=True,
    )


_ENCODING_ERRORS = {
    9,  # XML_ERR_INVALID_CHAR
    31,  # XML_ERR_UNKNOWN_ENCODING
    32,  # XML_ERR_UNSUPPORTED_ENCODING
    81,  # XML_ERR_INVALID_ENCODING
    5007,  # XML_I18N_CONV_FAILED
}


def parse_xml(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse untrusted XML bytes; raises ParseError with a reason that says what was wrong."""
    if len(data) > max_bytes:
        raise ParseError(Reason.TOO_LARGE, f"{len(data)} bytes is over the {max_bytes}-byte cap")
    if not data.strip():
        raise ParseError(Reason.EMPTY, "empty file")
    _refuse_dtd(data)
    parser = _parser()
    try:
        # Feeding without closing tells a valid-but-unfinished prefix (a file caught mid-write)
        # from bytes that are wrong from the start.
        parser.feed(data)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from None
    try:
        root: etree._Element = parser.close()
    except etree.XMLSyntaxError as exc:
        if _code(exc) in _ENCODING_ERRORS:
            raise _syntax_error(exc) from None
        raise ParseError(Reason.TRUNCATED_XML, f"document ends early (line {exc.lineno})") from None
    return root


def _code(exc: etree.XMLSyntaxError) -> int:
    return int(getattr(exc, "code", 0) or 0)


def _syntax_error(exc: etree.XMLSyntaxError) -> ParseError:
    if _code(exc) in _ENCODING_ERRORS or "encoding" in str(exc.msg).lower():
        return ParseError(Reason.BAD_ENCODING, f"bytes do not match the declared encoding (line {exc.lineno})")
    return ParseError(Reason.MALFORMED_XML, f"not well-formed XML (line {exc.lineno}, code {_code(exc)})")


def canonical_sha256(root: etree._Element) -> str:
    """SHA-256 of C14N 2.0 with insignificant whitespace stripped.

    Parity is decided on this, so BOM, UTF-8 vs UTF-16, CRLF vs LF and attribute order, which
    a copy or a replication may change without changing meaning, do not count as a difference.
    """
    tostring: Any = etree.tostring  # the stubs predate the c14n2 keyword arguments
    canonical: bytes = tostring(root, method="c14n2", strip_text=True, with_comments=False)
    return hashlib.sha256(canonical).hexdigest()


def local_name(element: etree._Element) -> str:
    """The tag without a namespace: SyLink files have none, but a tolerant reader should not care."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
