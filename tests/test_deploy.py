"""The deployment examples parse and say what the docs promise; Windows paths checked with PureWindowsPath."""

from __future__ import annotations

import shlex
from pathlib import Path, PureWindowsPath
from xml.etree import ElementTree

import yaml

from sepm_exporter.cli import parse_args
from sepm_exporter.sepm.layout import DEFAULT_WINDOWS_ROOTS, SERVER_CERTIFICATE
from sepm_exporter.settings.config import parse_config
from sepm_exporter.settings.webconfig import load_web_config

DEPLOY = Path(__file__).parent.parent / "deploy" / "windows"


def test_windows_example_config_is_valid_and_windows_shaped() -> None:
    config = parse_config(yaml.safe_load((DEPLOY / "config.partner-example.yml").read_text(encoding="utf-8")))
    local, partner = (PureWindowsPath(str(s.root)) for s in config.servers)
    assert local == DEFAULT_WINDOWS_ROOTS[0]
    assert partner.drive == r"\\sepm2.example.com\c$" and partner.name == "Symantec Endpoint Protection Manager"
    assert str(partner.joinpath(*SERVER_CERTIFICATE)).endswith(r"Manager\apache\conf\ssl\server.crt")
    (collection,) = config.collections
    assert PureWindowsPath(str(collection.path)).drive == r"\\files01.example.com\sepm-sylink$"
    assert PureWindowsPath(str(config.state_file)).parent == PureWindowsPath(r"C:\ProgramData\sepm-exporter")


def test_client_copy_script_renames_into_place() -> None:
    script = (DEPLOY / "Copy-SyLink.ps1").read_text(encoding="utf-8")
    assert script.index("Copy-Item") < script.index("Move-Item"), "copy to a temporary name, then rename"
    assert "'SyLink.xml'" in script and "$env:COMPUTERNAME" in script


def _expand(text: str) -> PureWindowsPath:
    """A WinSW value with its variables as the install script lays the files out (Prefix: the default)."""
    return PureWindowsPath(text.replace("%BASE%", r"C:\Program Files\sepm-exporter").replace("%ProgramData%", r"C:\ProgramData"))


def _service() -> ElementTree.Element:
    return ElementTree.fromstring((DEPLOY / "sepm-exporter.xml").read_text(encoding="utf-8"))


def test_service_definition_serves_with_the_config_and_web_config_the_install_script_lays_down() -> None:
    """The arguments parse with the exporter's own parser, and name the files Install-SepmExporter.ps1 puts in place."""
    service = _service()
    arguments = shlex.split(service.findtext("arguments") or "")
    args = parse_args(arguments)
    assert args.command == "serve" and args.listen == ":10877"
    data = PureWindowsPath(r"C:\ProgramData\sepm-exporter")
    assert _expand(str(args.config)) == data / "config.yml"
    assert _expand(str(args.web_config)) == data / "web-config.yml"
    prefix = PureWindowsPath(r"C:\Program Files\sepm-exporter")
    assert _expand(service.findtext("executable") or "") == prefix / "venv" / "Scripts" / "sepm-exporter.exe"
    assert _expand(service.findtext("logpath") or "") == data / "logs"
    script = (DEPLOY / "Install-SepmExporter.ps1").read_text(encoding="utf-8")
    assert "Join-Path -Path $env:ProgramData -ChildPath 'sepm-exporter'" in script  # the same data folder
    assert "Join-Path -Path $Prefix -ChildPath 'venv'" in script and "'sepm-exporter-service.exe'" in script  # %BASE%\venv
    assert "foreach ($name in @('config.yml', 'web-config.yml'))" in script and "'logs'" in script


def test_service_account_is_local_service_with_the_remote_share_caveat() -> None:
    text = (DEPLOY / "sepm-exporter.xml").read_text(encoding="utf-8")
    assert _service().findtext("serviceaccount/username") == r"NT AUTHORITY\LocalService"
    assert r"\\sepm2\c$" in text and "gMSA" in text


def test_the_shipped_configs_are_valid() -> None:
    local = parse_config(yaml.safe_load((DEPLOY / "config.local.yml").read_text(encoding="utf-8")))
    (server,) = local.servers
    assert PureWindowsPath(str(server.root)) == DEFAULT_WINDOWS_ROOTS[0]
    assert PureWindowsPath(str(local.state_file)) == PureWindowsPath(r"C:\ProgramData\sepm-exporter\state.json")
    web = load_web_config(DEPLOY / "web-config.yml")  # comments only, as shipped: plain HTTP, nobody to log in
    assert web.tls is None and web.users == {}


def test_service_definition_is_well_formed_and_named_as_the_windows_doc_says() -> None:
    """WinSW reads the XML named like its exe; the file's own comment and docs/windows.md must agree on that name."""
    service = (DEPLOY / "sepm-exporter.xml").read_text(encoding="utf-8")
    assert ElementTree.fromstring(service).findtext("id") == "sepm-exporter"  # an XML comment may not hold "--"
    guide = (DEPLOY.parent.parent / "docs" / "windows.md").read_text(encoding="utf-8")
    for name in ("sepm-exporter-service.exe", "sepm-exporter-service.xml"):
        assert name in service and name in guide, name
