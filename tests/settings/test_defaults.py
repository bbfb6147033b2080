"""With no config, a SEPM server watches its own install: the Windows paths, tested with PureWindowsPath."""

from __future__ import annotations

from pathlib import PurePath, PureWindowsPath

import pytest

from sepm_exporter.cli import main
from sepm_exporter.sepm.layout import SERVER_CERTIFICATE
from sepm_exporter.settings.defaults import candidate_roots, detect, state_file

X86 = PureWindowsPath(r"C:\Program Files (x86)\Symantec\Symantec Endpoint Protection Manager")
NATIVE = PureWindowsPath(r"C:\Program Files\Symantec\Symantec Endpoint Protection Manager")
WINDOWS_ENV = {"ProgramFiles(x86)": r"C:\Program Files (x86)", "ProgramFiles": r"C:\Program Files",
               "ProgramW6432": r"C:\Program Files", "ProgramData": r"C:\ProgramData", "COMPUTERNAME": "sepm1"}


def installed(*roots: PureWindowsPath) -> set[PureWindowsPath]:
    return {root.joinpath(*SERVER_CERTIFICATE) for root in roots}


def test_both_program_files_folders_are_candidates_x86_first() -> None:
    assert candidate_roots(WINDOWS_ENV) == (X86, NATIVE)
    assert candidate_roots({}) == (X86, NATIVE), "a service with an empty environment still looks on C:"


def test_a_system_on_another_drive_is_found_from_the_environment() -> None:
    env = {**WINDOWS_ENV, "ProgramFiles(x86)": r"D:\Program Files (x86)"}
    on_d = PureWindowsPath(r"D:\Program Files (x86)\Symantec\Symantec Endpoint Protection Manager")
    assert candidate_roots(env)[0] == on_d
    files = installed(on_d)
    config = detect(env, lambda p: PureWindowsPath(p) in files, "ignored")
    assert config is not None and PureWindowsPath(str(config.servers[0].root)) == on_d


@pytest.mark.parametrize("root", [X86, NATIVE])
def test_the_installed_root_becomes_the_one_server(root: PureWindowsPath) -> None:
    files = installed(root)
    config = detect(WINDOWS_ENV, lambda p: PureWindowsPath(p) in files, "ignored")
    assert config is not None
    (server,) = config.servers
    assert (server.name, PureWindowsPath(str(server.root))) == ("SEPM1", root)
    assert PureWindowsPath(str(config.state_file)) == PureWindowsPath(r"C:\ProgramData\sepm-exporter\state.json")
    assert state_file({}) == PureWindowsPath(r"C:\ProgramData\sepm-exporter\state.json")


def test_a_folder_without_a_server_certificate_is_not_an_install() -> None:
    seen: list[PurePath] = []
    assert detect(WINDOWS_ENV, lambda p: seen.append(p) or False, "host") is None
    assert [PureWindowsPath(p).parts[-4:] for p in seen] == [SERVER_CERTIFICATE] * 2


def test_the_hostname_names_the_server_when_computername_is_unset() -> None:
    files = installed(X86)
    config = detect({}, lambda p: PureWindowsPath(p) in files, "sepm-tokyo")
    assert config is not None and config.servers[0].name == "SEPM-TOKYO"


def test_no_config_and_no_install_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics"]) == 1
    err = capsys.readouterr().err
    assert "--config: not given, and no SEPM install found" in err and "Symantec Endpoint Protection Manager" in err
