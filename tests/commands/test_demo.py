"""The demo's config is the one it tells you to run `check --config` with: its probe is in the file."""

from __future__ import annotations

from pathlib import Path

from sepm_exporter.commands.demo import write_probe
from sepm_exporter.lab import estate
from sepm_exporter.settings.config import ProbeTarget, load_config


def test_the_probe_is_written_into_the_config_file(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "ラボ", groups=1, clients=2)
    write_probe(lab.config_path, "SEPM1", "127.0.0.1:20301", interval=10.0)
    config = load_config(lab.config_path)
    assert config.servers[0].probes == (ProbeTarget("127.0.0.1", 20301),) and config.servers[1].probes == ()
    assert config.probe_interval == 10.0
    assert config.servers[0].root == lab.server_root("SEPM1"), "the rest of the file is kept (a Japanese path too)"
