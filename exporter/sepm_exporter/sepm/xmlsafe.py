"""Hostile-proof XML: refuse DTDs and entities before parsing, tell half-written from garbage.

SEPM files arrive over shares from machines we do not control; a parser that expands entities
or loads DTDs can be made to eat memory (billion laughs) or read local files (XXE).
"""

from __future__ import annotations

import codecs
import hashlib
from typing import Any

from lxml import etree

from sepm_exporter.sepm.reasons import ParseError, Reason

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

# What a SEPM file can plausibly hold. A real SyLink.xml has a few dozen elements and at most a
# dozen attributes on one; the caps are two orders of magnitude above that. C14N sorts attributes
# per element (quadratic in their number) and walks every element, so a file over a cap is refused
# before it is canonicalised.
MAX_ELEMENTS = 20_000
MAX_ATTRIBUTES_PER_ELEMENT = 256
MAX_ATTRIBUTES = 50_000


def _as_utf8_for_scan(data: bytes) -> bytes:
    """The bytes as UTF-8 so that DTD checks also see UTF-16 input; lossy on purpose."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace").encode("utf-8", errors="replace")
    return data


def _refuse_dtd(data: bytes) -> None:
    """Linear: `bytes.find` over one lowered copy, no regex that can backtrack.

    Any DTD is refused; the reason says how dangerous it looked. An entity declaration with a
    SYSTEM or PUBLIC keyword anywhere after it is called external (over-approximating is fine: the
    file is refused either way, the reason only guides the reader).
    """
    scan = _as_utf8_for_scan(data).lower()
    doctype = scan.find(b"<!doctype")
    if doctype < 0:
        return
    entity = scan.find(b"<!entity", doctype)
    if entity >= 0 and (scan.find(b"system", entity) >= 0 or scan.find(b"public", entity) >= 0):
        raise ParseError(Reason.EXTERNAL_ENTITY, "external entity declared (SYSTEM/PUBLIC); not loaded")
    if entity >= 0:
        raise ParseError(Reason.ENTITY_EXPANSION, "entity declarations present; not expanded")
    raise ParseError(Reason.UNSAFE_XML, "document type declaration present; not processed")


def refuse_oversized_tree(root: etree._Element) -> None:
    """ParseError (too_complex) when the tree is past what a SEPM file can hold; one linear walk."""
    attributes = 0
    for elements, element in enumerate(root.iter(), start=1):
        count = len(element.attrib)
        attributes += count
        if elements > MAX_ELEMENTS:
            raise ParseError(Reason.TOO_COMPLEX, f"more than {MAX_ELEMENTS} elements")
        if count > MAX_ATTRIBUTES_PER_ELEMENT:
            raise ParseError(Reason.TOO_COMPLEX, f"an element with {count} attributes (cap {MAX_ATTRIBUTES_PER_ELEMENT})")
        if attributes > MAX_ATTRIBUTES:
            raise ParseError(Reason.TOO_COMPLEX, f"more than {MAX_ATTRIBUTES} attributes")


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
    except (etree.LxmlError, ValueError, MemoryError, RecursionError) as exc:
        raise ParseError(Reason.MALFORMED_XML, f"not readable as XML ({type(exc).__name__})") from None
    try:
        root: etree._Element = parser.close()
    except etree.XMLSyntaxError as exc:
        if _code(exc) in _ENCODING_ERRORS:
            raise _syntax_error(exc) from None
        raise ParseError(Reason.TRUNCATED_XML, f"document ends early (line {exc.lineno})") from None
    except (etree.LxmlError, ValueError, MemoryError, RecursionError) as exc:
        raise ParseError(Reason.MALFORMED_XML, f"not readable as XML ({type(exc).__name__})") from None
    refuse_oversized_tree(root)
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
    try:
        canonical: bytes = tostring(root, method="c14n2", strip_text=True, with_comments=False)
    except (etree.LxmlError, ValueError) as exc:
        raise ParseError(Reason.MALFORMED_XML, f"no canonical form ({type(exc).__name__})") from None
    return hashlib.sha256(canonical).hexdigest()


def local_name(element: etree._Element) -> str:
    """The tag without a namespace: SyLink files have none, but a tolerant reader should not care."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
