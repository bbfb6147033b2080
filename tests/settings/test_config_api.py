"""`servers[].api`: defaults, every error with its key path, and no password inline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sepm_exporter.settings.config import ConfigError, api_url, load_config, parse_config


def server(api: Any) -> dict[str, Any]:
    return {"servers": [{"name": "SEPM1", "root": "/srv/sepm", "api": api}]}


def problems(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_defaults_port_and_base_path() -> None:
    config = parse_config(server({"url": "https://sepm1.corp", "username": "svc", "password_file": "/run/pw"}))
    api = config.servers[0].api
    assert api is not None
    assert api.url == "https://sepm1.corp:8446/sepm/api/v1"
    assert (api.interval, api.timeout, api.page_size, api.domain, api.insecure_skip_verify) == (60.0, 10.0, 100, "", False)
    assert api_url("https://h:9000/custom/") == "https://h:9000/custom"


def test_relative_files_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("servers:\n  - name: S\n    root: r\n    api:\n      url: https://h\n      username: u\n"
                    "      password_file: pw\n      ca_file: ca.pem\n", encoding="utf-8")
    api = load_config(path).servers[0].api
    assert api is not None and api.password_file == tmp_path / "pw" and api.ca_file == tmp_path / "ca.pem"


def test_inline_password_is_refused_without_echoing_it() -> None:
    found = problems(server({"url": "https://h", "username": "u", "password": "hunter2", "password_file": "/pw"}))
    assert found == ["servers[0].api.password: not allowed inline; use password_file or password_env"]
    assert not any("hunter2" in p for p in found)


def test_every_error_at_once_with_its_path() -> None:
    found = problems(server({"url": "http://h", "password_file": "/pw", "password_env": "PW", "ca_file": "/ca",
                             "insecure_skip_verify": True, "interval": 0, "timeout": "soon", "colour": 1}))
    assert found == [
        "servers[0].api.colour: unknown key (allowed: ca_file, domain, insecure_skip_verify, interval, max_response_bytes, page_size, "
        "password_env, password_file, timeout, url, username)",
        "servers[0].api.url: must start with https:// (the API is served over TLS only)",
        "servers[0].api.username: required",
        "servers[0].api: give exactly one of password_file and password_env",
        "servers[0].api: give ca_file or insecure_skip_verify, not both",
        "servers[0].api.interval: must be at least 1.0",
        "servers[0].api.timeout: must be a number, got str",
    ]
    assert problems(server({"url": "https://h", "username": "u", "password_env": "P", "interval": 5, "timeout": 5})) == [
        "servers[0].api.timeout: must be shorter than interval"]
    assert problems(server("https://h"))[0].startswith("servers[0].api: must be a mapping")
