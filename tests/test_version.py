"""One version: sepm_exporter.__version__ is what the package metadata, `--version`, the
`sepm_exporter_build_info` metric and the image label say (the built wheel: tests/test_bundle.py)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import find
from sepm_exporter import __version__
from sepm_exporter.lab import estate

ROOT = Path(__file__).parent.parent


def test_pyproject_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sepm_exporter.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", __version__), __version__


def test_installed_metadata_version_and_metric_agree(tmp_path: Path) -> None:
    assert importlib.metadata.version("sepm-exporter") == __version__
    said = subprocess.run([sys.executable, "-m", "sepm_exporter", "--version"], capture_output=True, text=True, check=True)
    assert said.stdout.strip() == f"sepm-exporter {__version__}"
    lab = estate.init(tmp_path / "lab", groups=1, clients=1)
    metrics = subprocess.run([sys.executable, "-m", "sepm_exporter", "metrics", "--config", str(lab.config_path)],
                             capture_output=True, check=True, timeout=120).stdout
    assert find(metrics, "sepm_exporter_build_info") == [({"version": __version__}, 1.0)]


def test_the_image_label_defaults_to_the_same_version() -> None:
    (default,) = re.findall(r"^ARG VERSION=(\S+)$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert default == __version__


def test_the_license_file_is_the_one_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    shipped = importlib.metadata.distribution("sepm-exporter")
    assert "LICENSE" in (shipped.metadata.get_all("License-File") or [])
