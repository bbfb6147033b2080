"""The declared, stable set of error reasons.

Alerts, the dashboard and users' PromQL match on these spellings: they are a contract, so
they live in one enum and the docs list every member.
"""

from __future__ import annotations

import enum


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


class ParseError(Exception):
    """A typed failure: the reason is for labels, the detail for logs (never secrets)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
