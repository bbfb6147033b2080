"""`--web.config.file` in the Prometheus exporter-toolkit format: TLS and bcrypt basic auth.

Same file format as node_exporter's, so operators reuse what they already have.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from sepm_exporter.settings.config import ConfigError

_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}


@dataclass(frozen=True)
class WebConfig:
    """TLS settings (None: plain HTTP) and the allowed users with their bcrypt hashes."""

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)

    def authorized(self, header: str | None) -> bool:
        """Check an Authorization header; always True when no users are configured."""
        if not self.users:
            return True
        if header is None or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        try:
            return bcrypt.checkpw(password.encode("utf-8"), hashed)
        except ValueError:
            return False


def _tls(raw: dict[str, Any], base: Path, problems: list[str]) -> ssl.SSLContext | None:
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
        problems.append("tls_server_config.client_ca_file: required by client_auth_type " + str(auth))
    return context


def load_web_config(path: Path) -> WebConfig:
    """Read and validate; ConfigError with every problem, key path first."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read web config ({type(exc).__name__})"]) from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: must be a mapping"])
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
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
    return WebConfig(tls=tls, users=users)
