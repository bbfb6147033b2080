"""The deployment examples parse and say what the docs promise; Windows paths checked with PureWindowsPath."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import yaml

from sepm_exporter.sepm.layout import DEFAULT_WINDOWS_ROOTS, SERVER_CERTIFICATE
from sepm_exporter.settings.config import parse_config

DEPLOY = Path(__file__).parent.parent / "deploy" / "windows"


def test_windows_example_config_is_valid_and_windows_shaped() -> None:
    config = parse_config(yaml.safe_load((DEPLOY / "config.example.yml").read_text(encoding="utf-8")))
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


def test_service_definition_runs_serve() -> None:
    service = (DEPLOY / "sepm-exporter.xml").read_text(encoding="utf-8")
    assert "<arguments>serve " in service and "sepm-exporter.exe" in service


def test_service_definition_is_well_formed_and_named_as_the_windows_doc_says() -> None:
    """WinSW reads the XML named like its exe; the file's own comment and docs/windows.md must agree on that name."""
    from xml.etree import ElementTree

    service = (DEPLOY / "sepm-exporter.xml").read_text(encoding="utf-8")
    assert ElementTree.fromstring(service).findtext("id") == "sepm-exporter"  # an XML comment may not hold "--"
    guide = (DEPLOY.parent.parent / "docs" / "windows.md").read_text(encoding="utf-8")
    for name in ("sepm-exporter-service.exe", "sepm-exporter-service.xml"):
        assert name in service and name in guide, name
