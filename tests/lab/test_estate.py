from __future__ import annotations

import time
from pathlib import Path

from sepm_exporter.lab import estate
from sepm_exporter.sepm import layout
from sepm_exporter.settings.config import load_config


def test_init_writes_the_real_layout(lab: estate.Lab) -> None:
    for server in ("SEPM1", "SEPM2"):
        root = lab.server_root(server)
        assert root.joinpath(*layout.SERVER_CERTIFICATE).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        assert root.joinpath(*layout.SERVER_PRIVATE_KEY).read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
        groups = sorted(p.name for p in root.joinpath(*layout.OUTBOX_AGENT).iterdir())
        assert groups == sorted(g.group_id for g in lab.state.groups)
        assert all(layout.is_group_id(g) for g in groups)
        for group in groups:
            assert (root.joinpath(*layout.OUTBOX_AGENT, group, layout.SYLINK_NAME)).is_file()
            assert (root.joinpath(*layout.OUTBOX_AGENT, group, layout.INDEX2_NAME)).is_file()
    assert sorted(p.name for p in lab.clients_root.iterdir()) == [f"WS-{i:04d}" for i in range(1, 13)]
    assert [(s.name, s.site) for s in lab.state.servers] == [("SEPM1", "tokyo"), ("SEPM2", "osaka")]


def test_config_written_by_init_loads(lab: estate.Lab) -> None:
    config = load_config(lab.config_path)
    assert [s.name for s in config.servers] == ["SEPM1", "SEPM2"]
    assert config.collections[0].path == lab.clients_root
    assert config.state_file == lab.directory / "state.json"


def test_partners_start_identical_and_replicate_byte_for_byte(lab: estate.Lab) -> None:
    group = lab.state.groups[0].group_id
    assert lab.sylink_path("SEPM1", group).read_bytes() == lab.sylink_path("SEPM2", group).read_bytes()
    lab.drift("SEPM2", group)
    assert lab.sylink_path("SEPM1", group).read_bytes() != lab.sylink_path("SEPM2", group).read_bytes()
    lab.replicate("SEPM1", "SEPM2")
    assert lab.sylink_path("SEPM1", group).read_bytes() == lab.sylink_path("SEPM2", group).read_bytes()


def test_renew_keeps_or_replaces_the_key(lab: estate.Lab) -> None:
    key_before = lab.key_path("SEPM1").read_bytes()
    cert_before = lab.certificate_path("SEPM1").read_bytes()
    lab.renew("SEPM1", new_key=False)
    assert lab.key_path("SEPM1").read_bytes() == key_before
    assert lab.certificate_path("SEPM1").read_bytes() != cert_before
    lab.renew("SEPM1", new_key=True)
    assert lab.key_path("SEPM1").read_bytes() != key_before


def test_pull_moves_only_the_chosen_share(lab: estate.Lab) -> None:
    lab.renew("SEPM1", new_key=True)
    lab.publish("SEPM1")
    pulled = lab.pull(0.5)
    assert len(pulled) == 6
    for name, group in lab.state.clients.items():
        same = lab.client_path(name).read_bytes() == lab.sylink_path("SEPM1", group).read_bytes()
        assert same == (name in pulled)


def test_age_moves_mtimes_back(lab: estate.Lab) -> None:
    path = lab.client_path("WS-0001")
    before = path.stat().st_mtime
    lab.age(3600)
    assert abs(path.stat().st_mtime - (before - 3600)) < 1


def test_groups_appear_and_vanish(lab: estate.Lab) -> None:
    group = lab.add_group()
    assert lab.sylink_path("SEPM2", group).is_file()
    lab.remove_group(group)
    assert not lab.group_dir("SEPM1", group).exists()


def test_lab_survives_a_japanese_folder_name(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "ラボ", groups=1, clients=2)
    assert load_config(lab.config_path).servers[0].root.is_dir()


def test_identical_groups_and_split_configs_from_the_command_line(tmp_path: Path) -> None:
    from sepm_exporter.cli import main

    directory = tmp_path / "lab"
    assert main(["lab", "init", str(directory), "--groups", "3", "--clients", "6", "--identical-groups"]) == 0
    lab = estate.Lab(directory)
    assert lab.state.identical_groups
    files = {lab.sylink_path("SEPM1", g.group_id).read_bytes() for g in lab.state.groups}
    assert len(files) == 1, "byte-identical, as groups that inherit their settings"
    lab.publish("SEPM1")
    assert len({lab.sylink_path("SEPM1", g.group_id).read_bytes() for g in estate.Lab(directory).state.groups}) == 1
    assert main(["lab", "split-configs", str(directory), "--clients-on", "SEPM1"]) == 0
    sepm1 = load_config(directory / "split" / "SEPM1.yml")
    sepm2 = load_config(directory / "split" / "SEPM2.yml")
    assert [s.name for s in sepm1.servers] == ["SEPM1"] and sepm1.collections
    assert [s.name for s in sepm2.servers] == ["SEPM2"] and not sepm2.collections
    assert sepm1.state_file != sepm2.state_file
    paths = estate.write_split_configs(lab, tmp_path / "other")
    assert [p.name for p in paths] == ["SEPM1.yml", "SEPM2.yml", "clients.yml"]
    assert [s.name for s in load_config(paths[2]).servers] == ["SEPM1", "SEPM2"]


def test_lab_init_with_a_relative_folder_writes_a_config_that_serve_resolves(tmp_path: Path) -> None:
    """`lab init mylab` used to write `mylab/...` roots into `mylab/sepm-exporter.yml`, which the
    config resolves against its own folder: every root was DOWN."""
    import subprocess
    import sys

    from conftest import one
    from helpers import free_port, get, start_exporter, stop

    subprocess.run([sys.executable, "-m", "sepm_exporter", "lab", "init", "ラボ", "--clients", "3"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)
    config = tmp_path / "ラボ" / "sepm-exporter.yml"
    port = free_port()
    exporter = start_exporter(config, port)  # started from another folder than the lab's
    try:
        exposition = get(f"http://127.0.0.1:{port}/metrics")
        for server in ("SEPM1", "SEPM2"):
            assert one(exposition, "sepm_exporter_root_up", server=server, client_root="") == 1
        assert one(exposition, "sepm_exporter_files", kind="client_sylink") == 3
    finally:
        stop(exporter)
    assert load_config(config).state_file == tmp_path / "ラボ" / "state.json"


def test_a_renewal_is_dated_after_every_profile_published_before_it(lab: estate.Lab) -> None:
    """notBefore has whole seconds: a renewal in the very second of a publish waits that second out, so
    the profile SEPM made before it is dated before the certificate (rule 3 of the API's key sets)."""
    from sepm_exporter.sepm.certificate import parse_certificate_file

    assert all(made < (time.time() - estate.INIT_PROFILE_AGE + 5) * 1000 for made in lab.state.profiles.values())
    lab.publish("SEPM1")
    newest = max(lab.state.profiles.values())
    lab.renew("SEPM1", new_key=True)
    not_before = parse_certificate_file(lab.certificate_path("SEPM1").read_bytes()).leaf.not_before
    assert not_before * 1000 > newest
    assert estate.Lab(lab.directory).state.profiles == lab.state.profiles  # kept in lab.json
