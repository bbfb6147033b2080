"""SEPM's REST API, polled in the background: log in, page, fold, hand the figures over.

One `ApiClient` per server speaks HTTP (httpx: connection reuse, timeouts, TLS); `poll` pages
/groups and /computers and reads the three single answers; `ApiPollers` runs one daemon thread
per server and publishes every server's state together, so a scrape never waits for SEPM.

Secrets: the password is read when a login needs it and goes only into the login body; the token
lives in the client and is sent only in the Authorization header. Neither reaches an exception
message, a log line or a label: errors are described by reason, status code and path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import httpx

from sepm_exporter.sepm.certificate import CertificateFile, parse_certificate_file
from sepm_exporter.sepm.computers import ComputerStore
from sepm_exporter.sepm.rest import (
    ApiReason,
    Group,
    ShapeError,
    Snapshot,
    Tally,
    Token,
    TooLargeError,
    computer_identity,
    decode_computer,
    decode_database,
    decode_group,
    decode_online,
    decode_page,
    decode_page_totals,
    decode_replication,
    decode_token,
)
from sepm_exporter.settings.config import ApiConfig, ServerConfig
from sepm_exporter.sources import deadline

log = logging.getLogger("sepm_exporter")
T = TypeVar("T")

APP_NAME = "sepm-exporter"
RELOGIN_MARGIN = 0.1  # log in again when less than this share of the token's lifetime is left
# Bounds on one listing (docs/security.md): a server that never says lastPage, or lists without end,
# is stopped with a reason instead of growing the exporter. Real estates are far below both.
MAX_LISTED = 1_000_000  # items of /computers in one poll
MAX_GROUPS = 50_000  # items of /groups in one poll
READ_CHUNK = 1 << 16


class ApiError(Exception):
    """A failed request, by reason; the message holds no secret (path and status code at most)."""

    def __init__(self, reason: ApiReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def _tls(config: ApiConfig) -> ssl.SSLContext | bool:
    if config.insecure_skip_verify:
        return False
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    return True


def read_password(config: ApiConfig) -> str:
    """From the file (one trailing newline dropped) or the environment; read at each login, so a
    rotated password is picked up without a restart."""
    if config.password_env:
        value = os.environ.get(config.password_env)
        if value is None:
            raise ApiError(ApiReason.PASSWORD_UNREADABLE, f"environment variable {config.password_env} is not set")
        return value
    assert config.password_file is not None
    try:
        return config.password_file.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise ApiError(ApiReason.PASSWORD_UNREADABLE, f"{config.password_file}: {exc.strerror or type(exc).__name__}") from None


class Answer(NamedTuple):
    """A response read whole: its status and body (at most `max_response_bytes`)."""

    status_code: int
    body: bytes


def read_bounded(chunks: Iterable[bytes], budget: int, what: str) -> bytes:
    """The body, or `too_large` as soon as it passes `budget`: never more than that is held."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > budget:
            raise ApiError(ApiReason.TOO_LARGE, f"{what}: answer over max_response_bytes ({budget} bytes)")
        parts.append(chunk)
    return b"".join(parts)


class ApiClient:
    """One server's API session: a token kept until shortly before it expires, or until a 401."""

    def __init__(self, config: ApiConfig, clock: Callable[[], float] = time.monotonic,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock
        self.deadline = deadline.Deadline()
        self.http = httpx.Client(
            base_url=config.url, timeout=httpx.Timeout(config.timeout),
            headers={"Accept": "application/json", "User-Agent": APP_NAME},
            transport=transport or deadline.transport(self.deadline, _tls(config)),
        )
        self._token: Token | None = None
        self._renew_at = 0.0
        self.logins = 0

    def close(self) -> None:
        self.http.close()

    def _exchange(self, method: str, path: str, **kwargs: Any) -> Answer:
        """One request streamed under the byte budget; a declared length over it is refused unread."""
        budget = self.config.max_response_bytes
        with self.http.stream(method, path, **kwargs) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and (len(declared) > 18 or int(declared) > budget):
                raise ApiError(ApiReason.TOO_LARGE, f"{method} {path}: {declared[:20]} bytes announced "
                                                    f"(max_response_bytes {budget})")
            return Answer(response.status_code, read_bounded(response.iter_bytes(READ_CHUNK), budget, f"{method} {path}"))

    def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        """One request within `timeout` in all (connect, handshake, headers, body); a dropped reused
        connection is retried once on a fresh one, under a deadline of its own.

        SEPM 14.3 closes a kept-alive TLS connection after the first POST; the login therefore
        asks for `Connection: close`, and a GET that meets a closed connection is sent again.
        """
        for attempt in (1, 2):
            self.deadline.start(self.config.timeout)
            try:
                return self._exchange(method, path, **kwargs)
            except httpx.TimeoutException:
                raise ApiError(ApiReason.TIMEOUT, f"{method} {path}: not answered in full within {self.config.timeout:g} s") from None
            except httpx.ConnectError as exc:
                if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in str(exc) or "certificate" in str(exc):
                    raise ApiError(ApiReason.TLS, f"{method} {path}: TLS handshake failed") from None
                raise ApiError(ApiReason.CONNECTION, f"{method} {path}: cannot connect") from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 2 or method != "GET":
                    raise ApiError(ApiReason.CONNECTION, f"{method} {path}: connection closed without an answer") from None
                log.debug("api connection dropped; retrying on a new one", extra={"path": path, "detail": type(exc).__name__})
            except httpx.HTTPError as exc:
                raise ApiError(ApiReason.CONNECTION, f"{method} {path}: {type(exc).__name__}") from None
            finally:
                self.deadline.clear()
        raise AssertionError("unreachable")

    def login(self) -> None:
        body = {"username": self.config.username, "password": read_password(self.config),
                "domain": self.config.domain, "appName": APP_NAME}
        response = self._send("POST", "/identity/authenticate", json=body, headers={"Connection": "close"})
        del body
        if response.status_code in (400, 401, 403):
            raise ApiError(ApiReason.LOGIN_REFUSED,
                           f"POST /identity/authenticate: {response.status_code} (check username, password, domain)")
        if response.status_code != 200:
            raise ApiError(ApiReason.HTTP_STATUS, f"POST /identity/authenticate: {response.status_code}")
        token = _decoded(decode_token, _json(response.body, "/identity/authenticate"))
        self._token = token
        self._renew_at = self.clock() + token.lifetime_seconds * (1 - RELOGIN_MARGIN)
        self.logins += 1

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON of a GET (see `answer`)."""
        return _json(self.answer(path, params), path)

    def answer(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """The body of a GET with a valid token: a login first when none is held or it is about to
        expire; one more login after a 401 (the API documents no refresh endpoint)."""
        if self._token is None or self.clock() >= self._renew_at:
            self.login()
        for fresh in (False, True):
            assert self._token is not None
            response = self._send("GET", path, params=params, headers={"Authorization": f"Bearer {self._token.token}"})
            if response.status_code == 401 and not fresh:
                log.info("api token refused; logging in again", extra={"path": path})
                self._token = None
                self.login()
                continue
            if response.status_code == 401:
                self._token = None
                raise ApiError(ApiReason.TOKEN_EXPIRED, f"GET {path}: 401 with a token fresh from a new login")
            if response.status_code != 200:
                raise ApiError(ApiReason.HTTP_STATUS, f"GET {path}: {response.status_code}")
            return response.body
        raise AssertionError("unreachable")

    def pages(self, path: str, page_size: int, params: Mapping[str, Any] | None = None,
              limit: int = MAX_LISTED) -> Iterator[list[Any]]:
        """Each page's `content`, from pageIndex 1 until `lastPage` (or an empty page), watched by a
        `PageGuard` so a listing that never ends is stopped."""
        guard = PageGuard(path, page_size, limit)
        for index in range(1, guard.max_pages + 1):
            body = self.answer(path, {**(params or {}), "pageIndex": index, "pageSize": page_size})
            doc = _json(body, path)
            content, last = _decoded(lambda d: decode_page(d, path), doc)
            if last or not content:
                yield content
                return
            guard.check(index, body, doc, content)
            yield content
        raise ApiError(ApiReason.TOO_LARGE, f"GET {path}: no last page after {guard.max_pages} pages")


class PageGuard:
    """Ends a listing that would not end by itself: a page beyond `totalPages`, more items than
    `totalElements`, a page whose bytes repeat an earlier one (`invalid_response`), or more items than
    the listing's bound (`too_large`). A page repeated with a changed envelope passes the digest and
    is stopped by the totals or the bound."""

    def __init__(self, path: str, page_size: int, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.max_pages = limit // max(1, page_size) + 2
        self.items = 0
        self._seen: set[bytes] = set()

    def check(self, index: int, body: bytes, doc: Mapping[str, Any], content: list[Any]) -> None:
        """Called for every page that is not the last."""
        digest = hashlib.blake2b(body, digest_size=16).digest()
        if digest in self._seen:
            raise ApiError(ApiReason.INVALID_RESPONSE, f"GET {self.path}: page {index} repeats an earlier page and "
                                                       "lastPage never came")
        self._seen.add(digest)
        self.items += len(content)
        total_pages, total_elements = _decoded(lambda d: decode_page_totals(d, self.path), doc)
        if total_pages is not None and index > max(1, total_pages):
            raise ApiError(ApiReason.INVALID_RESPONSE, f"GET {self.path}: page {index} is beyond totalPages "
                                                       f"{total_pages} and not the last page")
        if total_elements is not None and self.items > total_elements:
            raise ApiError(ApiReason.INVALID_RESPONSE, f"GET {self.path}: {self.items} items listed, more than "
                                                       f"totalElements {total_elements}")
        if self.items > self.limit:
            raise ApiError(ApiReason.TOO_LARGE, f"GET {self.path}: more than {self.limit} items listed")


def _json(body: bytes, path: str) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise ApiError(ApiReason.INVALID_RESPONSE, f"{path}: JSON nested too deep") from None
    except ValueError:  # also a number of more digits than Python converts, and bytes that are not text
        raise ApiError(ApiReason.INVALID_RESPONSE, f"{path}: not JSON") from None


@contextlib.contextmanager
def _decode_errors() -> Iterator[None]:
    """A decoder's errors as the poll's reasons: too large, or an answer of a shape SEPM does not give."""
    try:
        yield
    except TooLargeError as exc:
        raise ApiError(ApiReason.TOO_LARGE, str(exc)) from None
    except ShapeError as exc:
        raise ApiError(ApiReason.INVALID_RESPONSE, str(exc)) from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:  # a shape no decoder foresaw
        raise ApiError(ApiReason.INVALID_RESPONSE, f"unexpected {type(exc).__name__} while decoding") from None


def _decoded(decode: Callable[[Any], T], doc: Any) -> T:
    with _decode_errors():
        return decode(doc)


def unique_groups(groups: Iterable[Group]) -> tuple[list[Group], int]:
    """Each group id once (the first listing wins, as SEPM lists a group once) and how many repeats were dropped."""
    kept: dict[str, Group] = {}
    repeated = 0
    for group in groups:
        if group.group_id in kept:
            repeated += 1
        else:
            kept[group.group_id] = group
    return list(kept.values()), repeated


class Distinct:
    """Remembers which computers were counted (by `computer_identity`), so one listed twice counts once.

    Holds one hash per computer (a collision between two of a million 64-bit hashes is as good as
    impossible), not the names."""

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self.repeated = 0

    def first_time(self, item: Any) -> bool:
        identity = computer_identity(item)
        if not identity:
            return True
        key = hash(identity)
        if key in self._seen:
            self.repeated += 1
            return False
        self._seen.add(key)
        return True


def poll(client: ApiClient, now: float) -> Snapshot:
    """One pass over the API: groups first (their serials), then computers folded page by page."""
    page_size = client.config.page_size
    groups, repeated_groups = unique_groups(
        _decoded(decode_group, item) for page in client.pages("/groups", page_size, limit=MAX_GROUPS) for item in page)
    tally = Tally(groups, now)
    distinct = Distinct()
    store = ComputerStore()
    for page in client.pages("/computers", page_size, {"sort": "COMPUTER_NAME"}):
        keep([item for item in page if distinct.first_time(item)], tally, store)
    totals = _decoded(decode_online, client.get("/stats/client/onlinestatus"))
    partners = _decoded(decode_replication, client.get("/replication/status"))
    database = _decoded(decode_database, client.get("/admin/database"))
    return Snapshot(now, tally.summaries(), totals, partners, database,
                    duplicates={"groups": repeated_groups, "computers": distinct.repeated},
                    computers=store, group_list=tuple(groups))


def keep(page: list[Any], tally: Tally, store: ComputerStore) -> None:
    """What is retained from each computer of a page: its group's tallies and its row in the store.

    One try per page, methods bound once: 100,000 computers a poll make the per-item overhead count;
    its errors are mapped as every decoder's are (`_decode_errors`).
    """
    fold, add = tally.add, store.add
    with _decode_errors():
        for item in page:
            computer = decode_computer(item)
            fold(computer)
            add(computer)


def _failed(state: ApiState, reason: ApiReason) -> ApiState:
    """The state after a failed poll: down, the reason counted, the last good figures kept."""
    errors = dict(state.errors)
    errors[reason.value] = errors.get(reason.value, 0) + 1
    return ApiState(state.server, state.site, False, state.last_success, errors, reason.value,
                    state.snapshot, state.database_certificate)


@dataclass(frozen=True)
class ApiState:
    """What the metrics of one server's API show: the last good snapshot and how the last poll went."""

    server: str
    site: str
    up: bool = False
    last_success: float | None = None
    errors: Mapping[str, int] = field(default_factory=dict)
    last_reason: str = ""
    snapshot: Snapshot | None = None
    database_certificate: CertificateFile | None = None


class ApiPoller:
    """One server: a daemon thread that polls every `interval` and reports its new state."""

    def __init__(self, server: ServerConfig, report: Callable[[ApiState], None],
                 clock: Callable[[], float] = time.time) -> None:
        assert server.api is not None
        self.config = server.api
        self.report = report
        self.clock = clock
        self.client = ApiClient(server.api)
        self.state = ApiState(server.name, server.site)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"api-{server.name}", daemon=True)

    def poll_once(self) -> ApiState:
        state = self.state
        try:
            snapshot = poll(self.client, self.clock())
        except ApiError as exc:
            if state.up or state.last_reason != exc.reason.value:
                log.warning("api poll failed", extra={"server": state.server, "reason": exc.reason.value, "detail": exc.detail})
            self.state = _failed(state, exc.reason)
        except Exception as exc:  # a bug or an answer nobody foresaw: down, counted, said with its traceback
            log.exception("api poll crashed", extra={"server": state.server, "reason": ApiReason.INVALID_RESPONSE.value,
                                                     "detail": type(exc).__name__})
            self.state = _failed(state, ApiReason.INVALID_RESPONSE)
        else:
            if not state.up:
                log.info("api poll succeeded", extra={"server": state.server, "groups": len(snapshot.groups),
                                                      "partners": len(snapshot.partners)})
            certificate = self._database_certificate(snapshot, state)
            self.state = ApiState(state.server, state.site, True, snapshot.taken_at, state.errors, "", snapshot, certificate)
        self.report(self.state)
        return self.state

    def _database_certificate(self, snapshot: Snapshot, before: ApiState) -> CertificateFile | None:
        pem = snapshot.database_certificate_pem
        if not pem:
            return None
        if before.snapshot is not None and before.snapshot.database_certificate_pem == pem:
            return before.database_certificate
        try:
            return parse_certificate_file(pem.encode("utf-8"))
        except ValueError as exc:
            log.warning("api database certificate unreadable", extra={"server": before.server, "detail": str(exc)[:200]})
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # a bug must not end the thread silently: say it, keep polling
                log.exception("api poll crashed", extra={"server": self.state.server})
            self._stop.wait(max(0.0, self.config.interval - (time.monotonic() - started)))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # one-shot commands poll without starting the thread
            self._thread.join(timeout)
        self.client.close()


class ApiPollers:
    """Every configured API. `on_change` gets every server's state after any poll, because the
    families are swapped whole and each holds the series of all servers."""

    def __init__(self, servers: tuple[ServerConfig, ...], on_change: Callable[[list[ApiState]], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self.on_change = on_change
        self.pollers = [ApiPoller(s, self._report, clock) for s in servers if s.api is not None]
        self.states = {p.state.server: p.state for p in self.pollers}

    def _report(self, state: ApiState) -> None:
        with self._lock:  # orders the servers' reports; the exporter's lock is taken only to swap
            self.states[state.server] = state
            self.on_change(list(self.states.values()))

    def initial(self) -> None:
        """The families before the first poll: every server down, error counters at zero."""
        with self._lock:
            self.on_change(list(self.states.values()))

    def poll_once(self) -> None:
        """One poll of every server, in the caller's thread (one-shot commands)."""
        for poller in self.pollers:
            poller.poll_once()

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
