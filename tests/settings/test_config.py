from __future__ import annotations

import re
from pathlib import Path, PureWindowsPath

import pytest

from sepm_exporter.sepm.layout import DEFAULT_WINDOWS_ROOTS, SERVER_CERTIFICATE, relative_label
from sepm_exporter.settings.config import ConfigError, load_config, parse_config


def test_every_problem_at_once_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "servers": [{"name": "SEPM1", "root": "/a"}, {"name": "SEPM1"}, {"root": 3, "colour": "red"}],
                "clients": [{"name": "WS", "file": "/x"}, {"name": "WS", "file": "/y"}],
                "watch": {"mode": "sometimes"},
                "bogus": 1,
            }
        )
    problems = caught.value.problems
    assert "servers[1].root: required" in problems
    assert "servers[1].name: duplicate server name 'SEPM1'" in problems
    assert any(p.startswith("servers[2].colour: unknown key") for p in problems)
    assert any(p.startswith("servers[2].root: must be a non-empty string") for p in problems)
    assert "clients[1].name: duplicate client name 'WS'" in problems
    assert any(p.startswith("watch.mode:") for p in problems)
    assert any(p.startswith("bogus: unknown key") for p in problems)


def test_missing_root_is_not_a_config_error(tmp_path: Path) -> None:
    config = parse_config({"servers": [{"name": "S", "root": str(tmp_path / "absent")}]})
    assert config.servers[0].root == tmp_path / "absent"


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text("servers:\n  - name: S\n    root: trees/S\nstate_file: s.json\n", encoding="utf-8")
    config = load_config(tmp_path / "c.yml")
    assert config.servers[0].root == tmp_path / "trees" / "S"
    assert config.state_file == tmp_path / "s.json"


def test_windows_style_config_keeps_its_paths(tmp_path: Path) -> None:
    text = (
        "servers:\n  - name: SEPM1\n    site: tokyo\n"
        "    root: 'C:\\Program Files (x86)\\Symantec\\Symantec Endpoint Protection Manager'\n"
        "clients:\n  - name: WS-0042\n"
        "    file: 'C:\\ProgramData\\Symantec\\Symantec Endpoint Protection\\CurrentVersion\\Data\\Config\\SyLink.xml'\n"
    )
    (tmp_path / "w.yml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "w.yml")
    root = PureWindowsPath(str(config.servers[0].root).replace(str(tmp_path) + "/", ""))
    assert root == DEFAULT_WINDOWS_ROOTS[0]
    cert = root.joinpath(*SERVER_CERTIFICATE)
    assert str(cert).endswith(r"Protection Manager\apache\conf\ssl\server.crt")
    assert relative_label(cert, root) == "apache/conf/ssl/server.crt"


def test_unreadable_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("servers: [\n  - :\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bad.yml")
    (problem,) = caught.value.problems
    assert re.search(r"bad\.yml:\d+:\d+: not valid YAML: \S", problem), problem


def test_mistyped_keys_say_so_without_claiming_nothing_to_watch() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server": [{"name": "A", "root": "/x"}], "client": [{"collection": "/y"}]})
    problems = caught.value.problems
    assert len(problems) == 2 and not any("nothing to watch" in p for p in problems), problems
    assert problems[0].startswith("server: unknown key (did you mean servers?")


def test_clients_as_a_mapping_carries_the_series_settings_beside_the_sources() -> None:
    config = parse_config({"clients": {"series": "all", "series_limit": 500, "sources": [{"collection": "/srv/sylink"}]}})
    assert (config.client_series, config.client_series_limit) == ("all", 500)
    assert [c.path for c in config.collections] == [Path("/srv/sylink")]
    listed = parse_config({"clients": [{"collection": "/srv/sylink"}]})  # the contract's list form, as before
    assert (listed.client_series, listed.client_series_limit) == ("problems", 20_000)


def test_client_series_mistakes_are_reported_with_their_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"clients": {"series": "some", "series_limit": -1, "sorces": [],
                                  "sources": [{"collection": "/a"}, {"name": "WS"}]}})
    problems = caught.value.problems
    assert "clients.series: must be one of problems, all, none" in problems
    assert "clients.series_limit: must be at least 0" in problems
    assert any(p.startswith("clients.sorces: unknown key (did you mean sources?") for p in problems)
    assert "clients.sources[1].file: required" in problems
    with pytest.raises(ConfigError) as caught:
        parse_config({"servers": [{"name": "S", "root": "/a"}], "clients": {"series_limit": 2.5}})
    assert caught.value.problems == ["clients.series_limit: must be a whole number, got float"]


def test_client_series_flags_get_the_checks_of_the_keys() -> None:
    from sepm_exporter.settings.config import with_overrides

    config = parse_config({"clients": [{"collection": "/a"}]})
    assert with_overrides(config, {"client_series": ("--clients.series", "none")}).client_series == "none"
    with pytest.raises(ConfigError) as caught:
        with_overrides(config, {"client_series": ("--clients.series", "most"),
                                "client_series_limit": ("--clients.series-limit", -5)})
    assert caught.value.problems == ["--clients.series: must be one of problems, all, none",
                                     "--clients.series-limit: must be at least 0"]
