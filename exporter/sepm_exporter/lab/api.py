"""The lab's SEPM REST API: one server's API over HTTPS on loopback, answered from the lab estate.

No SEPM runs here, so the lab serves the documented subset the exporter reads (docs/rest-api.md),
with SEPM's habits: a token with a lifetime, 401 for a wrong password or a refused token, and a
kept-alive connection dropped after the first POST (14.3). What it answers follows the estate:

- a client checks in every heartbeat of its group, at a phase of its own; a client whose SyLink.xml
  embeds no current server key made its last check-in before the newest certificate renewal and
  is offline once its next heartbeat plus the randomization range has passed;
- a client holding its group's current outbox file (checksum in index2.xml) reports the group's
  policy serial; others report an older one;
- replication with a partner is SUCCEEDED while the two outboxes agree (last success: the last
  `lab replicate` between them), FAILED_CONNECT while they differ;
- a fault switch (`lab api-fault DIR SERVER KIND`, a file beside the lab) makes every request
  answer 500, close the connection, hang, send invalid JSON, or refuse every token; or act as a
  hostile server would (`HOSTILE`): answer a byte at a time, send a 60 MB group name or 200 MB of
  answer, nest JSON 100,000 deep, send 400-digit numbers or a non-ASCII token, page without end,
  or list every group and computer twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from sepm_exporter.lab import pki
from sepm_exporter.lab.estate import Lab, atomic_write
from sepm_exporter.sepm import layout
from sepm_exporter.sepm.certificate import parse_certificate_file
from sepm_exporter.sepm.index2 import parse_index2
from sepm_exporter.sepm.serial import format_serial
from sepm_exporter.sepm.sylink import parse_sylink

BASE = "/sepm/api/v1"
HOSTILE = ("drip", "huge-label", "oversize", "deep", "bignum-login", "bignum-computers", "nonascii-token",
           "endless", "endless-totals", "duplicates")
FAULTS = ("none", "500", "close", "hang", "invalid-json", "token-expired", *HOSTILE)
USERNAME = "admin"
HANG_LIMIT = 120.0  # a hanging answer closes after this, so a forgotten fault cannot pin a thread for ever
DRIP_INTERVAL = 0.2  # drip: one byte this often, well inside any per-read timeout
HUGE_LABEL = 60 * 1024 * 1024  # huge-label: a group's fullPathName of this many characters
OVERSIZE = 200 * 1024 * 1024  # oversize: an answer of this many bytes (blanks, then the JSON)
DEEP = 100_000  # deep: arrays nested this deep
BIGNUM = 10**400  # bignum-*: beyond every float


def api_dir(lab_dir: Path) -> Path:
    return lab_dir / "api"


def fault_path(lab_dir: Path, server: str) -> Path:
    return api_dir(lab_dir) / f"{server}.fault"


def set_fault(lab_dir: Path, server: str, kind: str) -> None:
    """The fault switch: every following request of that server's API misbehaves so."""
    if kind not in FAULTS:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
    atomic_write(fault_path(lab_dir, server), kind.encode())


def read_fault(lab_dir: Path, server: str) -> str:
    try:
        return fault_path(lab_dir, server).read_text(encoding="utf-8").strip() or "none"
    except OSError:
        return "none"


def tls_files(lab_dir: Path, server: str) -> tuple[Path, Path]:
    """The API's own certificate (self-signed, for 127.0.0.1 and localhost) and key, made once."""
    cert, key_file = api_dir(lab_dir) / f"{server}.crt", api_dir(lab_dir) / f"{server}.key"
    if cert.is_file() and key_file.is_file():
        return cert, key_file
    key = pki.new_key(2048)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "symantec.com"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{server} lab API")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    der = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False, False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    )
    atomic_write(key_file, pki.key_pem(key))
    key_file.chmod(0o600)
    atomic_write(cert, pki.pem(der))
    return cert, key_file


def database_certificate(lab_dir: Path, server: str, valid_days: float) -> str:
    """The SEPM-to-database TLS root certificate /admin/database reports (made once per lab and validity)."""
    path = api_dir(lab_dir) / f"{server}-database-{valid_days:g}d.crt"
    if not path.is_file():
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        der = pki.ca(pki.new_key(2048), f"{server} database root", now - dt.timedelta(days=1),
                     now + dt.timedelta(days=valid_days))
        atomic_write(path, pki.pem(der))
    return path.read_text(encoding="ascii")


AGENT_VERSIONS = ("14.3.9210.6000", "14.3.9210.6000", "14.3.9210.6000", "14.2.1031.0100")  # one in four: 14.2 RU1
OLD_PROFILE_MS = 1_500_000_000_000  # the time of a profile no group published in the lab (2017)


def agent_version(name: str) -> str:
    """A client's agentVersion: fixed per name, so a quarter of the lab runs 14.2 RU1 (KB 187099's case)."""
    return AGENT_VERSIONS[zlib.crc32(b"agent " + name.encode()) % len(AGENT_VERSIONS)]


def old_agent_name(name: str) -> bool:
    """Whether the lab gives this client a 14.2 RU1 agent (for tests and the demo's figures)."""
    return agent_version(name).startswith("14.2.")


def _phase(name: str, period: int) -> int:
    return zlib.crc32(name.encode()) % max(1, period)


@dataclass(frozen=True)
class ClientRow:
    """One computer as the API reports it (compact: pages are rendered from these)."""

    name: str
    group_id: str
    online: bool
    last_update_ms: int
    profile_serial: str
    agent_version: str = AGENT_VERSIONS[0]


@dataclass(frozen=True)
class View:
    """The estate as one server's API sees it at one moment."""

    taken_at: float
    groups: tuple[dict[str, Any], ...]
    clients: tuple[ClientRow, ...]
    partners: tuple[dict[str, Any], ...]
    site: str
    extra: tuple[dict[str, Any], ...] = ()  # raw /computers items added by `add_computers` (odd records)


def extra_computers_path(lab_dir: Path, server: str) -> Path:
    return api_dir(lab_dir) / f"{server}.computers.json"


def add_computers(lab_dir: Path, server: str, items: list[dict[str, Any]]) -> None:
    """Raw /computers items this server's API lists after the estate's own: records SEPM may hold that
    no lab client stands behind (no group, a serial of another format, a profile dated ahead, a name twice)."""
    atomic_write(extra_computers_path(lab_dir, server), json.dumps(items).encode("utf-8"))


def _extra_computers(lab_dir: Path, server: str) -> tuple[dict[str, Any], ...]:
    try:
        items = json.loads(extra_computers_path(lab_dir, server).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    return tuple(i for i in items if isinstance(i, dict)) if isinstance(items, list) else ()


class Estate:
    """Reads the lab into a `View`, caching each client file by (mtime, size) and each content by hash."""

    def __init__(self, lab_dir: Path, server: str) -> None:
        self.lab_dir = lab_dir
        self.server = server
        self._files: dict[str, tuple[int, int, str, frozenset[str]]] = {}  # client -> mtime_ns, size, md5, keys
        self._keys_of: dict[str, frozenset[str]] = {}  # md5 -> embedded key digests

    def _client(self, path: Path, name: str) -> tuple[str, frozenset[str], int] | None:
        """(md5, embedded key digests, mtime_ns) of a client's file."""
        try:
            stat = path.stat()
        except OSError:
            return None
        cached = self._files.get(name)
        if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
            return cached[2], cached[3], cached[0]
        try:
            data = path.read_bytes()
        except OSError:
            return None
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
        keys = self._keys_of.get(md5)
        if keys is None:
            try:
                keys = parse_sylink(data).key_digests
            except Exception:  # a hostile or broken client file: it trusts nothing
                keys = frozenset()
            self._keys_of[md5] = keys
        self._files[name] = (stat.st_mtime_ns, stat.st_size, md5, keys)
        return md5, keys, stat.st_mtime_ns

    def view(self, now: float) -> View:
        lab = Lab(self.lab_dir)
        keys: set[str] = set()
        renewed = 0.0
        for spec in lab.state.servers:
            path = lab.certificate_path(spec.name)
            try:
                keys.add(parse_certificate_file(path.read_bytes()).leaf.public_key_sha256)
                renewed = max(renewed, path.stat().st_mtime)
            except (OSError, ValueError):
                continue
        groups: list[dict[str, Any]] = []
        serials: dict[str, tuple[str, str, int]] = {}  # group -> (current checksum, serial, published mtime_ns)
        timing: dict[str, tuple[int, int]] = {}
        for group in lab.state.groups:
            index_path = lab.group_dir(self.server, group.group_id) / layout.INDEX2_NAME
            try:
                index = parse_index2(index_path.read_bytes())
                published = index_path.stat().st_mtime_ns
                when = int(index.last_modified or published // 1_000_000)
            except (OSError, ValueError):
                index, when, published = None, 0, 0
            serial = format_serial(group.group_id, when) if index is not None else ""
            serials[group.group_id] = (index.checksum.upper() if index is not None else "", serial, published)
            timing[group.group_id] = (group.heartbeat_seconds, group.randomization_seconds)
            groups.append({
                "id": group.group_id, "name": group.name.rpartition("\\")[2], "fullPathName": group.name,
                "description": "", "numberOfPhysicalComputers": 0, "numberOfRegisteredUsers": 0,
                "policySerialNumber": serial, "policyDate": when, "policyInheritanceEnabled": False,
                "domain": {"id": lab.state.domain_id, "name": "Default"},
            })
        rows = []
        for name in sorted(lab.state.clients):
            group_id = lab.state.clients[name]
            found = self._client(lab.client_path(name), name)
            heartbeat, randomization = timing.get(group_id, (300, 0))
            phase = _phase(name, heartbeat)
            trusted = found is not None and bool(found[1] & keys)
            moment = now if trusted else min(now, renewed)
            last = moment - ((moment - phase) % heartbeat)
            online = now - last <= heartbeat + randomization
            checksum, serial, published = serials.get(group_id, ("", "", 0))
            # The policy serial a client reports is the one it last downloaded: the group's current
            # file, fetched after the group's last publish (mtimes move together under `lab age`).
            current = found is not None and found[0] == checksum and found[2] >= published
            # Otherwise the serial of the profile it holds: that file's first publish, as SEPM dates it.
            made = lab.state.profiles.get(found[0]) if found is not None else None
            profile = serial if current else format_serial(group_id, made if made is not None else OLD_PROFILE_MS + _phase(name, 10**6))
            rows.append(ClientRow(name, group_id, online, int(last * 1000), profile, agent_version(name)))
        return View(now, tuple(groups), tuple(rows), tuple(self._partners(lab, now)),
                    lab.server(self.server).site, _extra_computers(self.lab_dir, self.server))

    def _partners(self, lab: Lab, now: float) -> list[dict[str, Any]]:
        partners = []
        for spec in lab.state.servers:
            if spec.name == self.server:
                continue
            agree = all(
                _read(lab.sylink_path(self.server, g.group_id)) == _read(lab.sylink_path(spec.name, g.group_id))
                for g in lab.state.groups
            )
            runs = [float(v) for k, v in lab.state.extra.items()
                    if k in (f"replicated {self.server} {spec.name}", f"replicated {spec.name} {self.server}")]
            last_success = max(runs) if runs else _newest_outbox(lab, self.server)
            partners.append({
                "id": hashlib.sha256(spec.site.encode()).hexdigest()[:32].upper(), "name": spec.site,
                "location": "NA", "lastRunTime": int(now * 1000), "lastSuccessfulRunTime": int(last_success * 1000),
                "nextRunTime": int((now + 3600) * 1000), "status_code": "SUCCEEDED" if agree else "FAILED_CONNECT",
            })
        return partners


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _newest_outbox(lab: Lab, server: str) -> float:
    times = [p.stat().st_mtime for g in lab.state.groups if (p := lab.sylink_path(server, g.group_id)).is_file()]
    return max(times, default=time.time())


def computer_json(row: ClientRow, group_path: str, domain_id: str, server: str, site: str) -> dict[str, Any]:
    """One /computers item: the fields the exporter reads and a realistic share of the others."""
    digest = hashlib.md5(row.name.encode(), usedforsecurity=False).hexdigest().upper()
    return {
        "computerName": row.name, "uniqueId": digest, "hardwareKey": digest[::-1], "agentId": digest,
        "group": {"id": row.group_id, "name": group_path, "fullPathName": group_path, "externalReferenceId": "",
                  "source": "", "domain": {"id": domain_id, "name": "Default"}},
        "onlineStatus": 1 if row.online else 0, "lastUpdateTime": row.last_update_ms,
        "profileSerialNo": row.profile_serial, "profileVersion": row.agent_version.rpartition(".")[0],
        "agentVersion": row.agent_version,
        "agentType": "105", "lastServerName": server, "lastSiteName": site, "lastConnectedIpAddr": "10.0.2.10",
        "ipAddresses": ["10.0.2.10"], "macAddresses": ["00-15-5D-00-00-01"], "domainOrWorkgroup": "CORP",
        "logonUserName": "user", "operatingSystem": "Windows 10 Enterprise Edition", "infected": 0, "apOnOff": 1,
        "firewallOnOff": 1, "tamperOnOff": 1, "avDefsetVersion": "250101002", "creationTime": 1_600_000_000_000,
        "lastScanTime": row.last_update_ms, "majorVersion": 14, "minorVersion": 3,
    }


def _page(items: Any, query: dict[str, list[str]], default_size: int) -> dict[str, Any]:
    """The paging envelope around one page of `items` (a sequence; only the page's slice is taken)."""
    size = max(1, int(query.get("pageSize", [default_size])[0]))
    index = max(1, int(query.get("pageIndex", ["1"])[0]))
    total = len(items)
    pages = max(1, -(-total // size))
    content = list(items[(index - 1) * size : index * size])
    return {"content": content, "firstPage": index == 1, "lastPage": index >= pages, "number": index - 1,
            "numberOfElements": len(content), "size": size, "sort": None, "totalElements": total, "totalPages": pages}


def _twice(items: Any, fault: str) -> Any:
    """duplicates: every item listed twice, one after the other."""
    if fault != "duplicates":
        return items
    return [item for item in items for _ in (1, 2)]


def _hostile_page(page: dict[str, Any], fault: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """endless: page 1 again and again, lastPage never true and no totals to check against;
    endless-totals: distinct pages (the page number marks the content) past the totalPages they claim."""
    if fault == "endless":
        page = {k: v for k, v in page.items() if k not in ("totalPages", "totalElements", "number")}
        page["lastPage"] = False
    elif fault == "endless-totals":
        index = int(query.get("pageIndex", ["1"])[0])
        page = {**page, "lastPage": False, "totalPages": 2, "totalElements": 10**6, "number": index - 1}
        if not page["content"]:
            page["content"] = [{"id": f"{index:032X}", "name": f"page {index}"}]
    return page


class LabApi(ThreadingHTTPServer):
    """One server's API. Serves until `shutdown`; TLS is set up per connection, in its own thread."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, lab_dir: Path, server: str, address: tuple[str, int], password: str,
                 token_lifetime: float = 3600.0, database_days: float = 365.0, refresh: float = 1.0) -> None:
        self.lab_dir = lab_dir
        self.sepm_server = server
        self.password = password
        self.token_lifetime = token_lifetime
        self.refresh = refresh
        self.estate = Estate(lab_dir, server)
        self.tokens: dict[str, float] = {}
        self.database_pem = database_certificate(lab_dir, server, database_days)
        self.domain_id = Lab(lab_dir).state.domain_id
        self.requests = 0
        self._view: View | None = None
        self._view_lock = threading.Lock()
        self._state_lock = threading.Lock()
        cert, key = tls_files(lab_dir, server)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(cert, key)
        self.ca_file = cert
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{BASE}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped and reset connections are part of the act

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(wrapped, client_address)

    def view(self) -> View:
        with self._view_lock:
            now = time.time()
            if self._view is None or now - self._view.taken_at >= self.refresh:
                self._view = self.estate.view(now)
            return self._view

    def issue_token(self) -> str:
        token = secrets.token_hex(16)
        with self._state_lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def token_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._state_lock:
            expiry = self.tokens.get(header.removeprefix("Bearer ").strip().removeprefix("tökén-"))
        return expiry is not None and time.monotonic() < expiry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LabApi
    after_post = False

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body, separators=(",", ":")).encode()
        fault = read_fault(self.server.lab_dir, self.server.sepm_server)
        if fault == "drip":
            self._drip(status, data)
            return
        if fault == "oversize":
            self._oversize(status, data)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drip(self, status: int, data: bytes) -> None:
        """The whole answer, status line included, one byte every DRIP_INTERVAL: each read sees
        progress, so only a deadline on the whole request ends it."""
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json;charset=UTF-8\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        deadline = time.monotonic() + HANG_LIMIT
        for byte in head + data:
            if time.monotonic() > deadline or read_fault(self.server.lab_dir, self.server.sepm_server) != "drip":
                break
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(DRIP_INTERVAL)
        self._drop()

    def _oversize(self, status: int, data: bytes) -> None:
        """OVERSIZE bytes of blanks before the JSON (valid, if anyone read it all), chunked, so only
        counting the bytes as they come can stop it."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        blanks = b" " * (1 << 20)
        chunk = b"%x\r\n%s\r\n" % (len(blanks), blanks)
        for _ in range(OVERSIZE // len(blanks)):
            self.wfile.write(chunk)
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"errorCode": str(status), "appErrorCode": "", "errorMessage": message})

    def _drop(self) -> None:
        """Close without an answer (shutdown, so the handler's own clean-up still finds a socket)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _fault(self) -> str:
        fault = read_fault(self.server.lab_dir, self.server.sepm_server)
        if fault == "close":
            self._drop()
        elif fault == "hang":
            deadline = time.monotonic() + HANG_LIMIT
            while time.monotonic() < deadline and read_fault(self.server.lab_dir, self.server.sepm_server) == "hang":
                time.sleep(0.1)
            self._drop()
            return "close"
        elif fault == "500":
            self._error(500, "Internal Server Error")
        return fault

    def _dropped_after_post(self) -> bool:
        """SEPM 14.3: a kept-alive connection that carried a POST is closed at the next request."""
        if self.after_post:
            self._drop()
            return True
        return False

    def do_POST(self) -> None:
        self.server.requests += 1
        if self._dropped_after_post():
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.after_post = True
        if self._fault() in ("close", "500"):
            return
        if urlsplit(self.path).path != f"{BASE}/identity/authenticate":
            self._error(404, "Not Found")
            return
        try:
            credentials = json.loads(body)
            good = (credentials.get("username") == USERNAME and credentials.get("password") == self.server.password
                    and credentials.get("domain", "") in ("", "Default"))
        except (ValueError, AttributeError):
            self._error(400, "The parameters are invalid.")
            return
        if not good:
            self._error(401, "The user is unauthorized.")
            return
        fault = read_fault(self.server.lab_dir, self.server.sepm_server)
        token = self.server.issue_token()
        if fault == "nonascii-token":
            token = "tökén-" + token
        lifetime = BIGNUM if fault == "bignum-login" else int(self.server.token_lifetime)
        self._send(200, {"username": USERNAME, "getfullName": "Lab Admin", "domain": "Default",
                         "token": token, "tokenExpiration": lifetime,
                         "refreshToken": secrets.token_hex(8), "refreshTokenExpiration": 86400,
                         "role": {"bitMask": 8, "title": "System Administrator"}, "adminId": "1",
                         "domainid": self.server.domain_id, "serverTime": int(time.time() * 1000)})

    def do_GET(self) -> None:
        self.server.requests += 1
        if self._dropped_after_post():
            return
        fault = self._fault()
        if fault in ("close", "500"):
            return
        # The login faults refuse the token held from before, so that the client logs in again and meets them.
        if (fault in ("token-expired", "bignum-login", "nonascii-token")
                or not self.server.token_ok(self.headers.get("Authorization"))):
            self._error(401, "The user is unauthorized.")
            return
        if fault == "invalid-json":
            self._send(200, None, raw=b'{"content": [{"computerName": "WS-0001", ')
            return
        if fault == "deep":
            self._send(200, None, raw=b"[" * DEEP + b"]" * DEEP)
            return
        parts = urlsplit(self.path)
        path = parts.path.removeprefix(BASE)
        query = parse_qs(parts.query)
        if fault == "endless":
            query["pageIndex"] = ["1"]
        view = self.server.view()
        if path == "/groups":
            groups = list(view.groups)
            if fault == "huge-label" and groups:
                groups[0] = {**groups[0], "fullPathName": "A" * HUGE_LABEL}
            self._send(200, _hostile_page(_page(_twice(groups, fault), query, 25), fault, query))
        elif path == "/computers":
            paths = {g["id"]: g["fullPathName"] for g in view.groups}
            listed: Any = (*view.clients, *view.extra) if view.extra else view.clients
            page = _page(_twice(listed, fault), query, 20)
            page["content"] = [computer_json(r, paths.get(r.group_id, ""), self.server.domain_id,
                                             self.server.sepm_server, view.site) if isinstance(r, ClientRow) else r
                               for r in page["content"]]
            if fault == "bignum-computers":
                page["content"] = [{**item, "lastUpdateTime": BIGNUM} for item in page["content"]]
            self._send(200, _hostile_page(page, fault, query))
        elif path == "/stats/client/onlinestatus":
            online = sum(1 for r in view.clients if r.online)
            self._send(200, {"lastUpdated": int(view.taken_at * 1000), "clientCountStatsList": [
                {"status": "ONLINE", "clientsCount": online}, {"status": "OFFLINE", "clientsCount": len(view.clients) - online}]})
        elif path == "/replication/status":
            self._send(200, {"replicationStatus": {
                "id": hashlib.sha256(view.site.encode()).hexdigest()[:32].upper(), "siteName": view.site,
                "siteLocation": "NA", "replicationPartnerStatusList": list(view.partners)}})
        elif path == "/admin/database":
            self._send(200, {"name": "sem5", "description": "", "address": "127.0.0.1\\SQLEXPRESS", "instanceName": "SQLEXPRESS",
                             "port": 1433, "type": "Microsoft SQL Server", "version": "12.00.5000", "installedBySepm": True,
                             "database": "sem5", "dbUser": "sem5", "dbPasswords": [],
                             "dbTLSRootCertificate": self.server.database_pem})
        elif path == "/version":
            self._send(200, {"API_SEQUENCE": "240604011", "API_VERSION": "14.3.9000", "version": "14.3.25029.9000"})
        else:
            self._error(404, "Not Found")


def serve(lab_dir: Path, server: str, listen: str, password: str, token_lifetime: float = 3600.0,
          database_days: float = 365.0, refresh: float = 1.0) -> LabApi:
    """Start one server's API in a daemon thread; the caller stops it with `shutdown()`."""
    Lab(lab_dir).server(server)
    host, _, port = listen.rpartition(":")
    api = LabApi(lab_dir, server, (host or "127.0.0.1", int(port)), password, token_lifetime, database_days, refresh)
    threading.Thread(target=api.serve_forever, name=f"lab-api-{server}", daemon=True).start()
    return api


def config_with_api(lab: Lab, apis: dict[str, tuple[int, Path]], interval: float = 60.0, timeout: float = 10.0,
                    path: Path | None = None, collection: bool = True) -> Path:
    """The lab's exporter config with `servers[].api` for each (port, password file) given.

    `collection=False`: no client collection, as on most real estates: SEPM's records are the only
    client evidence (the lab's client files still decide what its API reports).
    """
    lines = ["servers:"]
    for spec in lab.state.servers:
        lines += [f"  - name: {spec.name}", f"    site: {spec.site}",
                  f"    root: {json.dumps(str(lab.server_root(spec.name)), ensure_ascii=False)}"]
        if spec.name in apis:
            port, password_file = apis[spec.name]
            cert, _ = tls_files(lab.directory, spec.name)
            lines += ["    api:", f"      url: https://127.0.0.1:{port}", f"      username: {USERNAME}",
                      f"      password_file: {json.dumps(str(password_file))}",
                      f"      ca_file: {json.dumps(str(cert))}", f"      interval: {interval:g}", f"      timeout: {timeout:g}"]
    if collection:
        lines += ["clients:", f"  - collection: {json.dumps(str(lab.clients_root), ensure_ascii=False)}"]
    lines += [f"state_file: {json.dumps(str(lab.directory / 'state.json'), ensure_ascii=False)}"]
    target = path or lab.directory / "sepm-exporter-api.yml"
    atomic_write(target, ("\n".join(lines) + "\n").encode("utf-8"))
    return target


def free_socket_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_for_demo(lab: Lab, interval: float = 10.0, collection: bool = True,
                   refresh: float = 1.0) -> tuple[Path, list[LabApi]]:
    """Every server's API on a free loopback port, with a fresh password in a file beside the lab;
    returns the exporter config that polls them (`collection=False`: and watches no client file)."""
    password_file = lab.directory / "api" / "password"
    if not password_file.is_file():
        atomic_write(password_file, secrets.token_urlsafe(18).encode())
        password_file.chmod(0o600)
    password = password_file.read_text(encoding="utf-8")
    apis = [serve(lab.directory, spec.name, f"127.0.0.1:{free_socket_port()}", password, refresh=refresh)
            for spec in lab.state.servers]
    config = config_with_api(lab, {api.sepm_server: (api.port, password_file) for api in apis},
                             interval=interval, timeout=min(5.0, interval / 2), collection=collection)
    return config, apis
