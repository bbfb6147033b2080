"""`--web.config.file` in the Prometheus exporter-toolkit format: TLS and bcrypt basic auth.

Same file format as node_exporter's, so operators reuse what they already have.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from sepm_exporter.settings.config import ConfigError
from sepm_exporter.settings.text import decode_settings

_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}
# The exporter-toolkit's (Go) names for the TLS 1.2 suites, in OpenSSL's spelling. TLS 1.3 suites are
# accepted and, as in Go, not configurable.
_CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
# Keys this exporter implements. Any other key is refused, as the exporter-toolkit refuses unknown
# keys: a setting silently ignored (max_version, cipher_suites once were) is a false sense of safety.
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
             "cipher_suites", "prefer_server_cipher_suites"}


MAX_PASSWORD_BYTES = 72  # what bcrypt reads; a longer password never matches (below)
CACHE_SIZE = 64  # credentials that passed, remembered so each scrape does not pay a bcrypt check
CHECKS_AT_ONCE = 1  # bcrypt checks of credentials not remembered, running at once
CHECK_WAIT = 5.0  # seconds a request waits for its check before it is refused (401) unchecked


class CredentialCache:
    """Credentials that passed a bcrypt check (as the exporter-toolkit caches them), and the bound on
    the checks of all others. A scrape with the right password pays bcrypt once, not at every
    scrape; a brute force pays it at most CHECKS_AT_ONCE at a time, so it uses one core at most and
    cannot slow the scrapes that the cache answers. Only digests are kept, never a password."""

    def __init__(self) -> None:
        self._passed: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self.checks = threading.BoundedSemaphore(CHECKS_AT_ONCE)

    def passed(self, key: bytes) -> bool:
        with self._lock:
            if key in self._passed:
                self._passed.move_to_end(key)
                return True
            return False

    def remember(self, key: bytes) -> None:
        with self._lock:
            self._passed[key] = None
            while len(self._passed) > CACHE_SIZE:
                self._passed.popitem(last=False)


@dataclass(frozen=True)
class WebConfig:
    """TLS settings (None: plain HTTP) and the allowed users with their bcrypt hashes."""

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    dummy: bytes = b""  # checked for unknown users, at the users' cost, so timing does not tell names apart
    cache: CredentialCache = field(default_factory=CredentialCache, compare=False, repr=False)

    def authorized(self, header: str | None) -> bool:
        """Check an Authorization header; always True when no users are configured.

        Known and unknown users, right and wrong passwords, short and over-long ones: each costs one
        bcrypt check (of the same cost for an unknown name) unless the credentials passed before,
        and every refusal is the same False (one 401)."""
        if not self.users:
            return True
        if header is None or not header.startswith("Basic "):
            return False
        try:
            user, _, text = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        password = text.encode("utf-8")
        hashed = self.users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode("utf-8"), hashed or b"", password))).digest()
        if hashed is not None and self.cache.passed(key):
            return True
        # bcrypt reads 72 bytes and the library refuses more: an over-long password is checked, cut,
        # against the dummy (a check like any other, for every name) and never matches.
        against = hashed if hashed is not None and len(password) <= MAX_PASSWORD_BYTES else self.dummy
        if not self.cache.checks.acquire(timeout=CHECK_WAIT):
            return False
        try:
            matched = bcrypt.checkpw(password[:MAX_PASSWORD_BYTES], against) if against else False
        except ValueError:
            matched = False
        finally:
            self.cache.checks.release()
        if matched and against is hashed:
            self.cache.remember(key)
            return True
        return False


def _tls(raw: dict[str, Any], base: Path, problems: list[str]) -> ssl.SSLContext | None:
    if not isinstance(raw, dict):
        problems.append("tls_server_config: must be a mapping")
        return None
    for name in raw:
        if name not in _TLS_KEYS:
            problems.append(f"tls_server_config.{name}: not supported by this exporter (supported: "
                            f"{', '.join(sorted(_TLS_KEYS))})")
    cert = raw.get("cert_file")
    key = raw.get("key_file")
    if not cert or not key:
        problems.append("tls_server_config: cert_file and key_file are both required")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    minimum = raw.get("min_version", "TLS12")
    if minimum not in _TLS_VERSIONS:
        problems.append(f"tls_server_config.min_version: one of {', '.join(_TLS_VERSIONS)}")
    else:
        context.minimum_version = _TLS_VERSIONS[minimum]
    maximum = raw.get("max_version")
    if maximum is not None:
        if maximum not in _TLS_VERSIONS:
            problems.append(f"tls_server_config.max_version: one of {', '.join(_TLS_VERSIONS)}")
        elif minimum in _TLS_VERSIONS and _TLS_VERSIONS[maximum] < _TLS_VERSIONS[minimum]:
            problems.append("tls_server_config.max_version: below min_version")
        else:
            context.maximum_version = _TLS_VERSIONS[maximum]
    _ciphers(context, raw.get("cipher_suites"), problems)
    try:
        context.load_cert_chain(base / cert, base / key)
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"tls_server_config.cert_file: cannot load certificate and key ({type(exc).__name__})")
    auth = raw.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        problems.append(f"tls_server_config.client_auth_type: one of {', '.join(sorted(_CLIENT_AUTH))}")
    client_ca = raw.get("client_ca_file")
    if client_ca:
        try:
            context.load_verify_locations(base / client_ca)
        except (OSError, ssl.SSLError):
            problems.append("tls_server_config.client_ca_file: cannot load")
    if auth in ("RequireAndVerifyClientCert", "RequireAnyClientCert"):
        context.verify_mode = ssl.CERT_REQUIRED
    elif auth in ("VerifyClientCertIfGiven", "RequestClientCert"):
        context.verify_mode = ssl.CERT_OPTIONAL
    if context.verify_mode != ssl.CERT_NONE and not client_ca:
        # Python's TLS has no "accept any certificate" mode (no verify callback): a presented client
        # certificate is always verified, so every mode that asks for one needs the CA that signs it.
        problems.append(f"tls_server_config.client_ca_file: required by client_auth_type {auth}: this exporter "
                        "verifies every client certificate it asks for (docs/security.md)")
    return context


def _ciphers(context: ssl.SSLContext, suites: Any, problems: list[str]) -> None:
    if suites is None:
        return
    if not isinstance(suites, list) or not all(isinstance(s, str) for s in suites):
        problems.append("tls_server_config.cipher_suites: a list of cipher suite names")
        return
    unknown = [s for s in suites if s not in _CIPHER_SUITES and s not in _TLS13_SUITES]
    if unknown:
        problems.append(f"tls_server_config.cipher_suites: unknown {', '.join(unknown)}")
        return
    names = [_CIPHER_SUITES[s] for s in suites if s in _CIPHER_SUITES]
    if names:
        try:
            context.set_ciphers(":".join(names))
        except ssl.SSLError:
            problems.append("tls_server_config.cipher_suites: none of them is available here")


def load_web_config(path: Path) -> WebConfig:
    """Read and validate; ConfigError with every problem, key path first."""
    try:
        raw = yaml.safe_load(decode_settings(path.read_bytes(), path)) or {}
    except ValueError as exc:  # not UTF-8 or UTF-16 text
        raise ConfigError([f"web config {exc}"]) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read web config ({type(exc).__name__})"]) from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: must be a mapping"])
    for key in raw:
        if key == "http_server_config":  # the exporter-toolkit's HTTP/2 and custom headers: not implemented here
            problems.append("http_server_config: not supported (HTTP/2 and response headers are not implemented); remove it")
        elif key not in ("tls_server_config", "basic_auth_users"):
            problems.append(f"{key}: unknown key")
    tls = None
    if raw.get("tls_server_config"):
        tls = _tls(raw["tls_server_config"], path.parent, problems)
    users: dict[str, bytes] = {}
    for user, hashed in (raw.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not hashed.startswith("$2"):
            problems.append(f"basic_auth_users.{user}: must be a bcrypt hash")
        else:
            users[str(user)] = hashed.encode("ascii")
    if problems:
        raise ConfigError(problems)
    return WebConfig(tls=tls, users=users, dummy=_dummy(users))


def _dummy(users: dict[str, bytes]) -> bytes:
    """A hash of nothing at the highest cost among the users: an unknown name costs a wrong password."""
    if not users:
        return b""
    rounds = max(int(h.split(b"$")[2]) if h.count(b"$") >= 3 and h.split(b"$")[2].isdigit() else 10
                 for h in users.values())
    return bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=min(max(rounds, 4), 31)))
