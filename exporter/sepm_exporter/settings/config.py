"""The configuration file: load, default, validate, and fail with every error at once.

Each message starts with the offending key's path (`servers[1].root: required`), because the
person reading it is editing YAML on a server and needs to know where to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sepm_exporter.sepm.xmlsafe import DEFAULT_MAX_BYTES
from sepm_exporter.settings.text import decode_settings

WATCH_MODES = ("auto", "events", "poll")
CLIENT_SERIES = ("problems", "all", "none")  # which clients get series of their own (metrics/client_series.py)
DEFAULT_CLIENT_SERIES_LIMIT = 20_000


class ConfigError(Exception):
    """Every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ProbeTarget:
    """A TLS endpoint of a server to connect to: what its clients are actually served."""

    host: str
    port: int
    server_name: str = ""  # SNI; defaults to host when host is a name
    ca_file: Path | None = None  # validate the served leaf against these certificates

    @property
    def endpoint(self) -> str:
        """The `endpoint` label: host:port as configured ([v6]:port for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ApiConfig:
    """How to reach one server's REST API. The password is read from a file or an environment
    variable when a poll logs in, so it never sits in the config, a label or a log line."""

    url: str
    username: str
    password_file: Path | None = None
    password_env: str = ""
    domain: str = ""
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    interval: float = 60.0
    timeout: float = 10.0
    page_size: int = 100
    max_response_bytes: int = 64 * 1024 * 1024  # one answer's body, decoded; over it: too_large


@dataclass(frozen=True)
class ServerConfig:
    """A SEPM install root as this host sees it."""

    name: str
    site: str
    root: Path
    certificates: tuple[Path, ...] = ()  # further certificate files, relative to root or absolute
    probes: tuple[ProbeTarget, ...] = ()  # TLS endpoints to probe (443, 8443, 8446 are the usual ones)
    api: ApiConfig | None = None  # the server's REST API, polled in the background when given


@dataclass(frozen=True)
class ClientCollection:
    """A folder holding one sub-folder per client, each with its SyLink.xml."""

    path: Path


@dataclass(frozen=True)
class ClientFile:
    """One client's own SyLink.xml (the exporter running on that client, or a fixed copy)."""

    name: str
    file: Path


@dataclass(frozen=True)
class Config:
    """Everything a run needs; flags override file values key by key."""

    servers: tuple[ServerConfig, ...] = ()
    collections: tuple[ClientCollection, ...] = ()
    client_files: tuple[ClientFile, ...] = ()
    state_file: Path | None = None
    max_file_bytes: int = DEFAULT_MAX_BYTES
    watch_mode: str = "auto"
    poll_interval: float = 5.0
    reconcile_interval: float = 300.0
    debounce: float = 0.2
    probe_interval: float = 60.0
    probe_timeout: float = 5.0
    external_url: str = ""  # where users reach this exporter (a proxy's URL); "" = http(s)://<host>:<port>
    client_series: str = "problems"  # problems: only clients that need action; all: every client; none
    client_series_limit: int = DEFAULT_CLIENT_SERIES_LIMIT  # the most per-client series published at once


_TOP_KEYS = {
    "external_url",
    "servers",
    "clients",
    "state_file",
    "max_file_bytes",
    "watch",
    "probe",
}
_PROBE_KEYS = {"interval", "timeout"}
_WATCH_KEYS = {"mode", "poll_interval", "reconcile_interval", "debounce"}


def _expect_str(value: Any, where: str, problems: list[str], required: bool = True) -> str:
    if value is None:
        if required:
            problems.append(f"{where}: required")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(f"{where}: must be a non-empty string, got {type(value).__name__}")
        return ""
    return value


def _expect_number(value: Any, where: str, problems: list[str], minimum: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: must be a number, got {type(value).__name__}")
        return None
    if value < minimum:
        problems.append(f"{where}: must be at least {minimum}")
        return None
    return float(value)


def _unknown(mapping: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> bool:
    """Report keys not in `allowed`, with the likely intended one; True when there were any."""
    import difflib

    found = False
    for key in mapping:
        if key not in allowed:
            found = True
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(f"{where}{key}: unknown key ({hint}allowed: {', '.join(sorted(allowed))})")
    return found


def _servers(raw: Any, problems: list[str]) -> tuple[ServerConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("servers: must be a list")
        return ()
    servers: list[ServerConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"servers[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with name and root")
            continue
        _unknown(item, {"name", "site", "root", "certificates", "probes", "api"}, f"{where}.", problems)
        name = _expect_str(item.get("name"), f"{where}.name", problems)
        site = _expect_str(item.get("site"), f"{where}.site", problems, required=False)
        root = _expect_str(item.get("root"), f"{where}.root", problems)
        if name and name in seen:
            problems.append(f"{where}.name: duplicate server name {name!r}")
        seen.add(name)
        certificates: list[Path] = []
        extra = item.get("certificates", [])
        if not isinstance(extra, list):
            problems.append(f"{where}.certificates: must be a list of paths")
        else:
            for j, path in enumerate(extra):
                text = _expect_str(path, f"{where}.certificates[{j}]", problems)
                if text:
                    certificates.append(Path(text))
        probes = _probes(item.get("probes", []), f"{where}.probes", problems)
        api = _api(item["api"], f"{where}.api", problems) if "api" in item else None
        if name and root:
            servers.append(ServerConfig(name=name, site=site, root=Path(root), certificates=tuple(certificates),
                                        probes=probes, api=api))
    return tuple(servers)


def _endpoint(text: str, where: str, problems: list[str]) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port`."""
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        problems.append(f"{where}: must be host:port with a port from 1 to 65535, got {text!r}")
        return None
    return host, int(port_text)


def _probes(raw: Any, where: str, problems: list[str]) -> tuple[ProbeTarget, ...]:
    """A list of `host:port`, or mappings with `endpoint` and optional `ca_file` and `server_name`."""
    if not isinstance(raw, list):
        problems.append(f"{where}: must be a list of host:port")
        return ()
    targets: list[ProbeTarget] = []
    seen: set[str] = set()
    for j, item in enumerate(raw):
        at = f"{where}[{j}]"
        ca_file: Path | None = None
        server_name = ""
        if isinstance(item, dict):
            _unknown(item, {"endpoint", "ca_file", "server_name"}, f"{at}.", problems)
            text = _expect_str(item.get("endpoint"), f"{at}.endpoint", problems)
            ca_text = _expect_str(item.get("ca_file"), f"{at}.ca_file", problems, required=False)
            ca_file = Path(ca_text) if ca_text else None
            server_name = _expect_str(item.get("server_name"), f"{at}.server_name", problems, required=False)
        else:
            text = _expect_str(item, at, problems)
        parsed = _endpoint(text, at, problems) if text else None
        if parsed is None:
            continue
        target = ProbeTarget(parsed[0], parsed[1], server_name, ca_file)
        if target.endpoint in seen:
            problems.append(f"{at}: duplicate endpoint {target.endpoint}")
            continue
        seen.add(target.endpoint)
        targets.append(target)
    return tuple(targets)


_API_KEYS = {"url", "username", "password_file", "password_env", "domain", "ca_file", "insecure_skip_verify",
             "interval", "timeout", "page_size", "max_response_bytes"}


def api_url(text: str) -> str:
    """`https://host` -> `https://host:8446/sepm/api/v1`: SEPM's port and base path unless given."""
    from urllib.parse import urlsplit

    parts = urlsplit(text.rstrip("/"))
    netloc = parts.netloc if parts.port is not None else f"{parts.netloc}:8446"
    path = parts.path or "/sepm/api/v1"
    return f"{parts.scheme}://{netloc}{path}"


def _api(raw: Any, where: str, problems: list[str]) -> ApiConfig | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with url, username and password_file or password_env")
        return None
    before = len(problems)
    if "password" in raw:  # said apart from other unknown keys, and the value is never echoed
        problems.append(f"{where}.password: not allowed inline; use password_file or password_env")
    _unknown({k: v for k, v in raw.items() if k != "password"}, _API_KEYS, f"{where}.", problems)
    url = _expect_str(raw.get("url"), f"{where}.url", problems)
    if url and not url.startswith("https://"):
        problems.append(f"{where}.url: must start with https:// (the API is served over TLS only)")
    username = _expect_str(raw.get("username"), f"{where}.username", problems)
    password_file = _expect_str(raw.get("password_file"), f"{where}.password_file", problems, required=False)
    password_env = _expect_str(raw.get("password_env"), f"{where}.password_env", problems, required=False)
    if bool(password_file) == bool(password_env):
        problems.append(f"{where}: give exactly one of password_file and password_env")
    domain = _expect_str(raw.get("domain"), f"{where}.domain", problems, required=False)
    ca_file = _expect_str(raw.get("ca_file"), f"{where}.ca_file", problems, required=False)
    insecure = raw.get("insecure_skip_verify", False)
    if not isinstance(insecure, bool):
        problems.append(f"{where}.insecure_skip_verify: must be true or false")
        insecure = False
    if ca_file and insecure:
        problems.append(f"{where}: give ca_file or insecure_skip_verify, not both")
    numbers: dict[str, float] = {}
    for key, minimum in (("interval", 1.0), ("timeout", 0.1), ("page_size", 1), ("max_response_bytes", 4096)):
        if key in raw:
            value = _expect_number(raw[key], f"{where}.{key}", problems, minimum)
            if value is not None:
                numbers[key] = value
    if "timeout" in numbers and numbers["timeout"] >= numbers.get("interval", 60.0):
        problems.append(f"{where}.timeout: must be shorter than interval")
    if len(problems) > before:
        return None
    return ApiConfig(
        url=api_url(url), username=username, password_file=Path(password_file) if password_file else None,
        password_env=password_env, domain=domain, ca_file=Path(ca_file) if ca_file else None,
        insecure_skip_verify=insecure, interval=numbers.get("interval", 60.0), timeout=numbers.get("timeout", 10.0),
        page_size=int(numbers.get("page_size", 100)),
        max_response_bytes=int(numbers.get("max_response_bytes", 64 * 1024 * 1024)),
    )


_CLIENTS_KEYS = {"sources", "series", "series_limit"}


def _client_settings(raw: Any, problems: list[str]) -> tuple[Any, dict[str, Any]]:
    """`clients:` is a list of sources, or a mapping with `sources` and the series settings.

    The list form is the contract's; the mapping form adds `series` and `series_limit` beside it.
    """
    if not isinstance(raw, dict):
        return raw, {}
    _unknown(raw, _CLIENTS_KEYS, "clients.", problems)
    settings: dict[str, Any] = {}
    if "series" in raw:
        if raw["series"] not in CLIENT_SERIES:
            problems.append(f"clients.series: must be one of {', '.join(CLIENT_SERIES)}")
        else:
            settings["client_series"] = raw["series"]
    if "series_limit" in raw:
        limit = _expect_integer(raw["series_limit"], "clients.series_limit", problems)
        if limit is not None:
            settings["client_series_limit"] = limit
    sources = raw.get("sources", [])
    if sources is None:
        sources = []
    if not isinstance(sources, list):
        problems.append("clients.sources: must be a list")
        sources = []
    return sources, settings


def _expect_integer(value: Any, where: str, problems: list[str], minimum: int = 0) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{where}: must be a whole number, got {type(value).__name__}")
        return None
    if value < minimum:
        problems.append(f"{where}: must be at least {minimum}")
        return None
    return value


def _clients(raw: Any, problems: list[str], where_list: str = "clients"
             ) -> tuple[tuple[ClientCollection, ...], tuple[ClientFile, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        problems.append("clients: must be a list of sources, or a mapping with sources, series and series_limit")
        return (), ()
    collections: list[ClientCollection] = []
    files: list[ClientFile] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{where_list}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with collection, or name and file")
            continue
        if "collection" in item:
            _unknown(item, {"collection"}, f"{where}.", problems)
            path = _expect_str(item.get("collection"), f"{where}.collection", problems)
            if path:
                collections.append(ClientCollection(Path(path)))
        else:
            _unknown(item, {"name", "file"}, f"{where}.", problems)
            name = _expect_str(item.get("name"), f"{where}.name", problems)
            file = _expect_str(item.get("file"), f"{where}.file", problems)
            if name and name in names:
                problems.append(f"{where}.name: duplicate client name {name!r}")
            names.add(name)
            if name and file:
                files.append(ClientFile(name=name, file=Path(file)))
    return tuple(collections), tuple(files)


MIN_FILE_BYTES = 1024
_WATCH_MINIMUMS = {"poll_interval": 0.05, "reconcile_interval": 0.5, "debounce": 0.0}


def _external_url(value: Any, where: str, problems: list[str]) -> str:
    """http(s)://host[:port][/path], without a query or fragment; kept without its trailing slash."""
    import urllib.parse

    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be a URL such as https://sepm-exporter.example:10877, got {type(value).__name__}")
        return ""
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        problems.append(f"{where}: must be an http:// or https:// URL with a host and no query, got {value!r}")
        return ""
    return value.strip().rstrip("/")


def with_overrides(config: Config, overrides: dict[str, tuple[str, Any]]) -> Config:
    """Lay flags over a validated config, with the very checks the file's keys get.

    `overrides` maps a Config field to (the flag's name, its value); every problem is reported
    under the flag's name, so `--watch.poll-interval -1` fails exactly as `watch.poll_interval: -1`.
    """
    problems: list[str] = []
    kwargs: dict[str, Any] = {}
    for field_name, (flag, value) in overrides.items():
        if field_name == "state_file":
            kwargs[field_name] = Path(value)
        elif field_name == "watch_mode":
            if value not in WATCH_MODES:
                problems.append(f"{flag}: must be one of {', '.join(WATCH_MODES)}")
            else:
                kwargs[field_name] = value
        elif field_name == "max_file_bytes":
            number = _expect_number(value, flag, problems, MIN_FILE_BYTES)
            if number is not None:
                kwargs[field_name] = int(number)
        elif field_name == "external_url":
            url = _external_url(value, flag, problems)
            if url:
                kwargs[field_name] = url
        elif field_name == "client_series":
            if value not in CLIENT_SERIES:
                problems.append(f"{flag}: must be one of {', '.join(CLIENT_SERIES)}")
            else:
                kwargs[field_name] = value
        elif field_name == "client_series_limit":
            limit = _expect_integer(value, flag, problems)
            if limit is not None:
                kwargs[field_name] = limit
        elif field_name in _WATCH_MINIMUMS:
            number = _expect_number(value, flag, problems, _WATCH_MINIMUMS[field_name])
            if number is not None:
                kwargs[field_name] = number
        else:
            problems.append(f"{flag}: not a setting")
    if problems:
        raise ConfigError(problems)
    from dataclasses import replace

    return replace(config, **kwargs)


def parse_config(raw: Any, base: Path | None = None) -> Config:
    """Validate a decoded YAML document; relative paths are taken from the config file's folder."""
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping"])
    mistyped = _unknown(raw, _TOP_KEYS, "", problems)
    servers = _servers(raw.get("servers"), problems)
    sources, client_settings = _client_settings(raw.get("clients"), problems)
    collections, files = _clients(sources, problems, "clients.sources" if isinstance(raw.get("clients"), dict) else "clients")
    state_text = _expect_str(raw.get("state_file"), "state_file", problems, required=False)
    config = Config(servers=servers, collections=collections, client_files=files)
    kwargs: dict[str, Any] = dict(client_settings)
    if state_text:
        kwargs["state_file"] = Path(state_text)
    if "max_file_bytes" in raw:
        value = _expect_number(raw["max_file_bytes"], "max_file_bytes", problems, MIN_FILE_BYTES)
        if value is not None:
            kwargs["max_file_bytes"] = int(value)
    watch = raw.get("watch", {})
    if not isinstance(watch, dict):
        problems.append("watch: must be a mapping")
        watch = {}
    _unknown(watch, _WATCH_KEYS, "watch.", problems)
    if "mode" in watch:
        if watch["mode"] not in WATCH_MODES:
            problems.append(f"watch.mode: must be one of {', '.join(WATCH_MODES)}")
        else:
            kwargs["watch_mode"] = watch["mode"]
    for key, minimum in _WATCH_MINIMUMS.items():
        if key in watch:
            value = _expect_number(watch[key], f"watch.{key}", problems, minimum)
            if value is not None:
                kwargs[key] = value
    if "external_url" in raw:
        url = _external_url(raw["external_url"], "external_url", problems)
        if url:
            kwargs["external_url"] = url
    probe = raw.get("probe", {})
    if not isinstance(probe, dict):
        problems.append("probe: must be a mapping")
        probe = {}
    _unknown(probe, _PROBE_KEYS, "probe.", problems)
    for key, minimum in (("interval", 1.0), ("timeout", 0.1)):
        if key in probe:
            value = _expect_number(probe[key], f"probe.{key}", problems, minimum)
            if value is not None:
                kwargs[f"probe_{key}"] = value
    if not servers and not collections and not files and not mistyped:  # a mistyped key says more than this would
        problems.append("(top level): nothing to watch: give servers, clients, or both")
    if problems:
        raise ConfigError(problems)
    config = Config(servers=servers, collections=collections, client_files=files, **kwargs)
    return _anchored(config, base) if base is not None else config


def _anchored(config: Config, base: Path) -> Config:
    """Relative paths in a config file mean relative to that file, not to the current folder."""

    def anchor(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    from dataclasses import replace

    return replace(
        config,
        servers=tuple(
            replace(s, root=anchor(s.root), api=_anchored_api(s.api, anchor),
                    probes=tuple(replace(p, ca_file=anchor(p.ca_file) if p.ca_file else None) for p in s.probes))
            for s in config.servers
        ),
        collections=tuple(ClientCollection(anchor(c.path)) for c in config.collections),
        client_files=tuple(ClientFile(f.name, anchor(f.file)) for f in config.client_files),
        state_file=anchor(config.state_file) if config.state_file is not None else None,
    )


def _anchored_api(api: ApiConfig | None, anchor: Any) -> ApiConfig | None:
    from dataclasses import replace

    if api is None:
        return None
    return replace(api, password_file=anchor(api.password_file) if api.password_file else None,
                   ca_file=anchor(api.ca_file) if api.ca_file else None)


def load_config(path: Path) -> Config:
    """Read and validate a config file; ConfigError says every problem at once."""
    try:
        text = decode_settings(path.read_bytes(), path)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror or exc})"]) from None
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        cause = getattr(exc, "problem", None) or type(exc).__name__
        context = getattr(exc, "context", None)
        detail = f"{cause} ({context})" if context else str(cause)
        raise ConfigError([f"{path}{where}: not valid YAML: {detail}"]) from None
    return parse_config(raw, base=path.parent)
