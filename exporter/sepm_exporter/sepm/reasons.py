"""The declared, stable set of error reasons.

Alerts, the dashboard and users' PromQL match on these spellings: they are a contract, so
they live in one enum and the docs list every member.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Reason(enum.StrEnum):
    """Why a file yields no (or partial) facts."""

    UNREADABLE = "unreadable"  # OS refused the read (permissions, I/O error)
    VANISHED = "vanished"  # listed, then gone before it could be read
    NOT_A_FILE = "not_a_file"  # a directory (or device) where a file should be
    SYMLINK_LOOP = "symlink_loop"  # a link that never resolves
    TOO_LARGE = "too_large"  # over the configured size cap; not read
    EMPTY = "empty"  # zero bytes (often a file caught mid-write)
    TRUNCATED_XML = "truncated_xml"  # a valid prefix of XML that ends early: half-written
    MALFORMED_XML = "malformed_xml"  # not well-formed XML at all (random bytes, garbage)
    BAD_ENCODING = "bad_encoding"  # bytes do not match the declared encoding
    UNSAFE_XML = "unsafe_xml"  # a DTD (internal subset, parameter entities): refused
    ENTITY_EXPANSION = "entity_expansion"  # entity declarations (billion laughs): refused
    EXTERNAL_ENTITY = "external_entity"  # SYSTEM/PUBLIC entities (file or network): refused
    NOT_SYLINK = "not_sylink"  # well-formed XML that is not a SyLink.xml
    BAD_CERTIFICATE = "bad_certificate"  # a certificate (file or embedded) that cannot be decoded
    BAD_GROUP_FOLDER = "bad_group_folder"  # an outbox folder whose name is not 32 hex digits
    DUPLICATE_CLIENT = "duplicate_client"  # a client name already published from another file
    BAD_STATE = "bad_state"  # the state file was corrupt, empty or from a future version
    BAD_KEYSTORE = "bad_keystore"  # a keystore (JKS, PKCS#12) that is malformed, truncated or over a cap
    KEYSTORE_ENCRYPTED = "keystore_encrypted"  # a PKCS#12 whose certificates are encrypted under its password
    TOO_COMPLEX = "too_complex"  # more elements, attributes or certificates than a SEPM file holds
    BAD_NUMBER = "bad_number"  # a numeric setting that is not a number in range (401 digits, -5)
    OUTSIDE_ROOT = "outside_root"  # a link leading out of its watched root, or to a private key: not opened
    PARSER_FAILURE = "parser_failure"  # an unforeseen failure while reading one file: reported, never fatal


class ParseError(Exception):
    """A typed failure: the reason is for labels, the detail for logs (never secrets)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def only_parse_errors(parse: Callable[P, T]) -> Callable[P, T]:
    """A parser's contract made a guard: whatever goes wrong inside, the caller sees a ParseError.

    The parsers already map every failure they foresee to its reason; this is for the ones nobody
    foresaw (a library's new exception class, a recursion limit), so that one file can never stop
    a scan. The detail names the class only: the message could quote file content.
    """

    @functools.wraps(parse)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return parse(*args, **kwargs)
        except ParseError:
            raise
        except Exception as exc:  # the point of the guard
            raise ParseError(Reason.PARSER_FAILURE, f"unexpected {type(exc).__name__}") from None

    return guarded
