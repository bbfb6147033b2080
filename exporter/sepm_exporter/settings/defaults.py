"""The config a SEPM server gets when none is given: its own install root, found where installers put it.

Pure: the environment, a file-existence test and the host name come in, so the Windows logic is
tested on any platform with `PureWindowsPath`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path, PurePath, PureWindowsPath

from sepm_exporter.sepm.layout import DEFAULT_WINDOWS_ROOTS, SERVER_CERTIFICATE
from sepm_exporter.settings.config import Config, ServerConfig

MANAGER = ("Symantec", "Symantec Endpoint Protection Manager")


def candidate_roots(environ: Mapping[str, str]) -> tuple[PureWindowsPath, ...]:
    """Install roots to try, in order: the x86 Program Files first (SEPM 14 installs there), then the native one.

    The environment's ProgramFiles folders come first, so a system on D: is found; the literal C:
    defaults follow for services started with an empty environment.
    """
    found: list[PureWindowsPath] = []
    for variable in ("ProgramFiles(x86)", "ProgramW6432", "ProgramFiles"):
        base = environ.get(variable)
        if base:
            found.append(PureWindowsPath(base, *MANAGER))
    found.extend(DEFAULT_WINDOWS_ROOTS)
    return tuple(dict.fromkeys(found))


def state_file(environ: Mapping[str, str]) -> PureWindowsPath:
    """Beside other services' data, not in the install tree an upgrade may replace."""
    return PureWindowsPath(environ.get("ProgramData") or r"C:\ProgramData", "sepm-exporter", "state.json")


def detect(environ: Mapping[str, str], exists: Callable[[PurePath], bool], hostname: str) -> Config | None:
    """A one-server config for the first candidate root that holds a server certificate, else None."""
    for root in candidate_roots(environ):
        if exists(root.joinpath(*SERVER_CERTIFICATE)):
            name = environ.get("COMPUTERNAME") or hostname or "localhost"
            return Config(servers=(ServerConfig(name=name.upper(), site="", root=Path(root)),),
                          state_file=Path(state_file(environ)))
    return None
