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

WATCH_MODES = ("auto", "events", "poll")


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
class ServerConfig:
    """A SEPM install root as this host sees it."""

    name: str
    site: str
    root: Path
    certificates: tuple[Path, ...] = ()  # further certificate files, relative to root or absolute
    probes: tuple[ProbeTarget, ...] = ()  # TLS endpoints to probe (443, 8443, 8446 are the usual ones)


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


_TOP_KEYS = {
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
        _unknown(item, {"name", "site", "root", "certificates", "probes"}, f"{where}.", problems)
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
        if name and root:
            servers.append(ServerConfig(name=name, site=site, root=Path(root), certificates=tuple(certificates),
                                        probes=probes))
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


def _clients(raw: Any, problems: list[str]) -> tuple[tuple[ClientCollection, ...], tuple[ClientFile, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        problems.append("clients: must be a list")
        return (), ()
    collections: list[ClientCollection] = []
    files: list[ClientFile] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        where = f"clients[{i}]"
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
    collections, files = _clients(raw.get("clients"), problems)
    state_text = _expect_str(raw.get("state_file"), "state_file", problems, required=False)
    config = Config(servers=servers, collections=collections, client_files=files)
    kwargs: dict[str, Any] = {}
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
            replace(s, root=anchor(s.root),
                    probes=tuple(replace(p, ca_file=anchor(p.ca_file) if p.ca_file else None) for p in s.probes))
            for s in config.servers
        ),
        collections=tuple(ClientCollection(anchor(c.path)) for c in config.collections),
        client_files=tuple(ClientFile(f.name, anchor(f.file)) for f in config.client_files),
        state_file=anchor(config.state_file) if config.state_file is not None else None,
    )


def load_config(path: Path) -> Config:
    """Read and validate a config file; ConfigError says every problem at once."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror or exc})"]) from None
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
