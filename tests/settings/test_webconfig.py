"""The web config refuses what it would otherwise ignore: a setting that does nothing is a lie to the operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from sepm_exporter.settings.config import ConfigError
from sepm_exporter.settings.webconfig import load_web_config


def test_http_server_config_is_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("http_server_config:\n  http2: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_web_config(path)
    assert any(p.startswith("http_server_config: not supported") for p in raised.value.problems)


def test_an_empty_web_config_is_plain_http_without_auth(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("{}\n", encoding="utf-8")
    web = load_web_config(path)
    assert web.tls is None and web.users == {}
