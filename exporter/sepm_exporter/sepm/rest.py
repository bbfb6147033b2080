"""SEPM REST API answers as frozen facts: decoding and folding only, no I/O.

Which fields are relied on, and which meanings are inferred rather than documented, is written
down in docs/rest-api.md; the decoders here read exactly those fields and nothing else, so an
answer with extra or missing optional fields still decodes. A field of the wrong type is a
`ShapeError` (the poll's `invalid_response`), never a crash further up.

Computers are folded page by page into per-group tallies (`Tally`), so 100,000 computers cost
O(groups) memory, and each computer is looked at once.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from sepm_exporter.sepm.serial import SerialError, parse_serial

if TYPE_CHECKING:
    from sepm_exporter.sepm.computers import ComputerStore

# Check-in age buckets (seconds): from a lab heartbeat to a month, so a 5-second lab and a 4-hour
# estate both land in buckets that tell "on time" from "gone".
AGE_BUCKETS: tuple[float, ...] = (
    10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400,
)


class ApiReason(StrEnum):
    """Why a poll failed: a fixed set, so alerts and dashboards can rely on the spelling."""

    LOGIN_REFUSED = "login_refused"  # /identity/authenticate answered 401/400/403: wrong account or password
    TOKEN_EXPIRED = "token_expired"  # a request was refused (401) even with a token fresh from a new login
    HTTP_STATUS = "http_status"  # any other answer that is not 2xx (a 500, a 404 for a wrong base path)
    CONNECTION = "connection"  # refused, reset, or closed without an answer
    TIMEOUT = "timeout"  # no answer within `timeout`
    TLS = "tls"  # the handshake failed: unknown CA, wrong host name, no common protocol
    INVALID_RESPONSE = "invalid_response"  # not JSON, or JSON not of the documented shape
    PASSWORD_UNREADABLE = "password_unreadable"  # password_file cannot be read, password_env not set
    TOO_LARGE = "too_large"  # an answer over max_response_bytes, a label text over MAX_LABEL_CHARS, a listing over its cap


KNOWN_REPLICATION_STATUSES = (
    "SUCCEEDED", "CONNECTING", "AUTHENTICATING", "SUBMITTING", "PROCESSING", "CANCELED", "NEVER_REPLICATED",
    "FAILED_CONNECT",
)


# Limits on what an answer may put into the exporter (docs/security.md). A real SEPM stays far below
# each: group paths are a few hundred characters, timestamps are milliseconds since 1970.
MAX_LABEL_CHARS = 1024  # any text that becomes a label value (group id and path, partner, status)
MAX_NUMBER = 2**53  # any number read (milliseconds, seconds, counts): larger is not a SEPM figure
MAX_TOKEN_CHARS = 8192


class ShapeError(ValueError):
    """An answer that is not what the API documents (not JSON of the right shape)."""


class TooLargeError(ShapeError):
    """A text that would become a label, longer than MAX_LABEL_CHARS (the poll's `too_large`)."""


@dataclass(frozen=True)
class Token:
    """A bearer token and its lifetime; `repr` never shows the token."""

    token: str = field(repr=False)
    lifetime_seconds: float


@dataclass(frozen=True)
class Group:
    """A group from /groups: its id is the outbox folder name (uppercase 32 hex on disk)."""

    group_id: str
    path: str
    policy_serial: str
    policy_date_ms: int | None = None  # policyDate: the profile's time, the same instant as the serial's


class Computer(NamedTuple):
    """The fields of one /computers item that the exporter uses (a tuple: built 100,000 times a poll)."""

    group_id: str
    online: bool | None  # onlineStatus: 1 online, 0 offline (inferred), None when absent
    last_update: float | None  # lastUpdateTime, Unix seconds
    profile_serial: str
    name: str = ""  # computerName
    unique_id: str = ""  # uniqueId
    agent_version: str = ""  # agentVersion, e.g. 14.2.5587.2100


@dataclass(frozen=True)
class Partner:
    """A replication partner of the local site."""

    name: str
    status: str  # status_code, upper case
    last_success: float | None  # lastSuccessfulRunTime, Unix seconds; None when 0 or absent


@dataclass(frozen=True)
class GroupSummary:
    """One group's figures after every page of computers was folded."""

    group_id: str
    path: str
    policy_serial: str
    online: int
    offline: int
    on_current_policy: int
    age_buckets: tuple[int, ...]  # cumulative counts, one per AGE_BUCKETS bound
    age_sum: float
    age_count: int
    policy_time: float | None = None  # the group's profile time, Unix seconds to the ms (`policy_time_ms`)


@dataclass(frozen=True)
class Snapshot:
    """Everything one successful poll learned."""

    taken_at: float
    groups: tuple[GroupSummary, ...]
    totals: Mapping[str, int]  # /stats/client/onlinestatus: status (lower case) -> clients
    partners: tuple[Partner, ...]
    database_certificate_pem: str  # /admin/database dbTLSRootCertificate; "" when none
    duplicates: Mapping[str, int] = field(default_factory=dict)  # listing -> items skipped as repeats
    computers: ComputerStore | None = None  # every computer /computers listed, in columns
    group_list: tuple[Group, ...] = ()  # /groups as listed (serials, policy dates)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _text(doc: Mapping[str, Any], key: str, what: str, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise ShapeError(f"{what}.{key}: missing")
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"{what}.{key}: expected a string, got {type(value).__name__}")
    return value


def _label(doc: Mapping[str, Any], key: str, what: str, required: bool = False) -> str:
    """A text that becomes a label value: bounded, so an answer cannot put megabytes into /metrics."""
    value = _text(doc, key, what, required)
    if len(value) > MAX_LABEL_CHARS:
        raise TooLargeError(f"{what}.{key}: {len(value)} characters (at most {MAX_LABEL_CHARS})")
    return value


def _integer(doc: Mapping[str, Any], key: str, what: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (math.inf, -math.inf):
        raise ShapeError(f"{what}.{key}: expected a number, got {type(value).__name__}")
    if not -MAX_NUMBER <= value <= MAX_NUMBER:  # a 400-digit integer would overflow every float it meets
        raise ShapeError(f"{what}.{key}: a number beyond {MAX_NUMBER}")
    return int(value)


def _ms(doc: Mapping[str, Any], key: str, what: str) -> float | None:
    value = _integer(doc, key, what)
    return value / 1000.0 if value else None


def group_key(raw_id: str) -> str:
    """The REST id as the file side spells the outbox folder: upper case."""
    return raw_id.strip().upper()


def decode_token(doc: Any) -> Token:
    """POST /identity/authenticate: `token`, and `tokenExpiration` as a lifetime in seconds."""
    body = _mapping(doc, "authenticate")
    token = _text(body, "token", "authenticate", required=True)
    if not token:
        raise ShapeError("authenticate.token: empty")
    # It goes into an HTTP header: printable ASCII without blanks, or the next request could not be sent.
    if len(token) > MAX_TOKEN_CHARS or not (token.isascii() and token.isprintable()) or " " in token:
        raise ShapeError("authenticate.token: not a printable ASCII word of at most 8192 characters")
    lifetime = _integer(body, "tokenExpiration", "authenticate")
    return Token(token, float(lifetime) if lifetime and lifetime > 0 else 3600.0)


def decode_page(doc: Any, what: str) -> tuple[list[Any], bool]:
    """The paging envelope of /computers and /groups: `content` and `lastPage`."""
    body = _mapping(doc, what)
    content = body.get("content")
    if content is None:
        content = []
    if not isinstance(content, list):
        raise ShapeError(f"{what}.content: expected a list, got {type(content).__name__}")
    last = body.get("lastPage")
    if not isinstance(last, bool):
        raise ShapeError(f"{what}.lastPage: expected a boolean, got {type(last).__name__}")
    return content, last


def decode_page_totals(doc: Mapping[str, Any], what: str) -> tuple[int | None, int | None]:
    """`totalPages` and `totalElements` of a paging envelope, None when absent (checked, not trusted)."""
    return _integer(doc, "totalPages", what), _integer(doc, "totalElements", what)


def decode_group(item: Any) -> Group:
    body = _mapping(item, "groups.content[]")
    raw_id = _label(body, "id", "groups.content[]", required=True)
    path = _label(body, "fullPathName", "groups.content[]") or _label(body, "name", "groups.content[]")
    return Group(group_key(raw_id), path, _text(body, "policySerialNumber", "groups.content[]"),
                 _integer(body, "policyDate", "groups.content[]"))


def computer_identity(item: Any) -> str:
    """What makes two /computers items the same computer: `uniqueId`, else `computerName`; "" when
    neither is a text (such an item is never taken for a duplicate)."""
    if type(item) is not dict:
        return ""
    for key in ("uniqueId", "computerName"):
        value = item.get(key)
        if type(value) is str and value:
            return value
    return ""


def decode_computer(item: Any) -> Computer:
    """One /computers item. The common, well-typed item takes a fast path (a poll decodes 100,000 of
    them); anything else goes through the checked path, which says what is wrong."""
    if type(item) is dict:
        group, status = item.get("group"), item.get("onlineStatus")
        last, serial = item.get("lastUpdateTime"), item.get("profileSerialNo")
        name, unique, agent = item.get("computerName"), item.get("uniqueId"), item.get("agentVersion")
        if (type(group) is dict and type(raw_id := group.get("id")) is str and type(status) is int
                and type(last) is int and type(serial) is str and len(raw_id) <= MAX_LABEL_CHARS
                and -MAX_NUMBER <= last <= MAX_NUMBER and type(name) is str and type(unique) is str
                and type(agent) is str):
            return Computer(raw_id.strip().upper(), status == 1, last / 1000.0 if last else None, serial,
                            name, unique, agent)
    return _decode_computer_checked(item)


def _decode_computer_checked(item: Any) -> Computer:
    body = _mapping(item, "computers.content[]")
    group = body.get("group")
    where = "computers.content[].group"
    group_id = group_key(_label(_mapping(group, where), "id", where)) if group is not None else ""
    status = _integer(body, "onlineStatus", "computers.content[]")
    return Computer(
        group_id=group_id,
        online=None if status is None else status == 1,
        last_update=_ms(body, "lastUpdateTime", "computers.content[]"),
        profile_serial=_text(body, "profileSerialNo", "computers.content[]"),
        name=_text(body, "computerName", "computers.content[]"),
        unique_id=_text(body, "uniqueId", "computers.content[]"),
        agent_version=_text(body, "agentVersion", "computers.content[]"),
    )


def decode_online(doc: Any) -> dict[str, int]:
    """GET /stats/client/onlinestatus: status (compared without case) -> clients."""
    body = _mapping(doc, "onlinestatus")
    rows = body.get("clientCountStatsList")
    if not isinstance(rows, list):
        raise ShapeError("onlinestatus.clientCountStatsList: expected a list")
    totals: dict[str, int] = {}
    for row in rows:
        entry = _mapping(row, "onlinestatus.clientCountStatsList[]")
        status = _label(entry, "status", "onlinestatus.clientCountStatsList[]", required=True).lower()
        totals[status] = totals.get(status, 0) + (_integer(entry, "clientsCount", "onlinestatus.clientCountStatsList[]") or 0)
    return totals


def decode_replication(doc: Any) -> tuple[Partner, ...]:
    """GET /replication/status: one object in the spec; an array or nothing is accepted too."""
    body = _mapping(doc, "replication")
    status = body.get("replicationStatus")
    sites = [] if status is None else status if isinstance(status, list) else [status]
    partners: list[Partner] = []
    for site in sites:
        rows = _mapping(site, "replication.replicationStatus").get("replicationPartnerStatusList") or []
        if not isinstance(rows, list):
            raise ShapeError("replication.replicationPartnerStatusList: expected a list")
        for row in rows:
            entry = _mapping(row, "replicationPartnerStatusList[]")
            name = _label(entry, "name", "replicationPartnerStatusList[]") or _label(entry, "id", "replicationPartnerStatusList[]")
            partners.append(Partner(
                name=name,
                status=_label(entry, "status_code", "replicationPartnerStatusList[]").upper() or "UNKNOWN",
                last_success=_ms(entry, "lastSuccessfulRunTime", "replicationPartnerStatusList[]"),
            ))
    return tuple(partners)


def decode_database(doc: Any) -> str:
    """GET /admin/database: the PEM root certificate of the SEPM-to-database TLS link, or ""."""
    return _text(_mapping(doc, "database"), "dbTLSRootCertificate", "database").strip()


def policy_time_ms(group: Group) -> int | None:
    """The group's profile time in ms: from its serial (what computers report back), else `policyDate`.

    Both are the same instant on every public sample; the serial is preferred because a computer's
    `profileSerialNo` is compared with it.
    """
    try:
        return parse_serial(group.policy_serial).time_ms
    except SerialError:
        return group.policy_date_ms if group.policy_date_ms and group.policy_date_ms > 0 else None


@dataclass
class _Counts:
    online: int = 0
    offline: int = 0
    on_current: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(AGE_BUCKETS))
    age_sum: float = 0.0
    age_count: int = 0


class Tally:
    """Computers folded into per-group counts as pages arrive: O(groups) memory, O(1) per computer."""

    def __init__(self, groups: Iterable[Group], now: float) -> None:
        self.groups = {g.group_id: g for g in groups}
        self.now = now
        self.counts: dict[str, _Counts] = {}

    def add(self, computer: Computer) -> None:
        counts = self.counts.get(computer.group_id)
        if counts is None:
            counts = self.counts[computer.group_id] = _Counts()
        if computer.online is True:
            counts.online += 1
        elif computer.online is False:
            counts.offline += 1
        group = self.groups.get(computer.group_id)
        if group is not None and group.policy_serial and computer.profile_serial == group.policy_serial:
            counts.on_current += 1
        if computer.last_update is not None:
            age = max(0.0, self.now - computer.last_update)
            index = bisect.bisect_left(AGE_BUCKETS, age)
            if index < len(AGE_BUCKETS):
                counts.buckets[index] += 1
            counts.age_sum += age
            counts.age_count += 1

    def summaries(self) -> tuple[GroupSummary, ...]:
        """Every group /groups named, and any group that only computers named, sorted by id."""
        out = []
        for group_id in sorted(set(self.groups) | set(self.counts)):
            group = self.groups.get(group_id)
            counts = self.counts.get(group_id) or _Counts()
            cumulative, running = [], 0
            for n in counts.buckets:
                running += n
                cumulative.append(running)
            out.append(GroupSummary(
                group_id=group_id,
                path=group.path if group is not None else "",
                policy_serial=group.policy_serial if group is not None else "",
                online=counts.online,
                offline=counts.offline,
                on_current_policy=counts.on_current,
                age_buckets=tuple(cumulative),
                age_sum=counts.age_sum,
                age_count=counts.age_count,
                policy_time=_seconds(policy_time_ms(group)) if group is not None else None,
            ))
        return tuple(out)


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0
