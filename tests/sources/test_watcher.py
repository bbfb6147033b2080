"""Changes reach /metrics through the watcher: events within a second, polling within an interval."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import find, one
from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.sources.watcher import filesystem_type, needs_polling

MOUNTS = """sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw 0 0
//fs01/sepm /mnt/sepm2 cifs rw 0 0
fs02:/export /mnt/nfs nfs4 rw 0 0
"""


def test_filesystem_type_takes_the_longest_mount() -> None:
    assert filesystem_type(Path("/mnt/sepm2/Symantec Endpoint Protection Manager"), MOUNTS) == "cifs"
    assert filesystem_type(Path("/mnt/nfs/x"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/srv/sylink"), MOUNTS) == "ext4"


def test_unc_paths_are_polled() -> None:
    assert needs_polling(Path(r"\\sepm2\c$\Program Files (x86)"))


@pytest.mark.parametrize("mode", ["events", "poll"])
def test_a_change_is_visible_in_metrics(lab: estate.Lab, tmp_path: Path, mode: str) -> None:
    port = free_port()
    process = start_exporter(
        lab.config_path, port, f"--watch.mode={mode}", "--watch.poll-interval=0.5", "--watch.reconcile-interval=600",
        log=tmp_path / "log",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        group = lab.state.groups[0].group_id
        assert one(get(url), "sepm_sylink_replica_mismatch", group_id=group) == 0
        started = time.monotonic()
        lab.drift("SEPM2", group)
        wait_for(lambda: one(get(url), "sepm_sylink_replica_mismatch", group_id=group) == 1, timeout=10)
        latency = time.monotonic() - started
        print(f"{mode}: change visible after {latency:.3f} s")
        # A group that appears and a client that goes are picked up too.
        new_group = lab.add_group()
        wait_for(lambda: find(get(url), "sepm_sylink_info", group_id=new_group, server="SEPM2"), timeout=10)
        lab.client_path("WS-0005").unlink()
        wait_for(lambda: not find(get(url), "sepm_client_sylink_info", client="WS-0005"), timeout=10)
        # A share that drops and returns.
        lab.vanish("SEPM1")
        wait_for(lambda: one(get(url), "sepm_exporter_root_up", server="SEPM1") == 0, timeout=10)
        lab.restore("SEPM1")
        wait_for(lambda: one(get(url), "sepm_exporter_root_up", server="SEPM1") == 1, timeout=10)
        lab.drift("SEPM1", group, heartbeat_seconds=999)
        wait_for(lambda: one(get(url), "sepm_sylink_heartbeat_seconds", server="SEPM1", group_id=group) == 999,
                 timeout=10)
    finally:
        assert stop(process) == 0
