"""Client folders a hostile client can make, through a real `serve`: links out of the share, and
folders that never hold a SyLink.xml."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from conftest import find, one
from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.lab import estate


def test_a_folder_link_out_of_the_share_is_reported_alike_whatever_lies_behind_it(lab: estate.Lab, tmp_path: Path) -> None:
    """It used to be reported only when its target held a SyLink.xml: the answer told what exists outside."""
    outside = tmp_path / "outside"
    (outside / "with-sylink").mkdir(parents=True)
    (outside / "with-sylink" / "SyLink.xml").write_bytes(lab.client_path("WS-0001").read_bytes())
    (outside / "empty").mkdir()
    (outside / "unreadable").mkdir(mode=0)
    targets = {"LINK-SYLINK": outside / "with-sylink", "LINK-EMPTY": outside / "empty",
               "LINK-NOWHERE": outside / "no-such-folder", "LINK-UNREADABLE": outside / "unreadable",
               "LINK-ETC": Path("/etc")}
    for name, target in targets.items():
        os.symlink(target, lab.clients_root / name)
    port = free_port()
    exporter = start_exporter(lab.config_path, port, "--watch.poll-interval=0.5", "--clients.series=all",
                              log=tmp_path / "exporter.log")
    try:
        exposition = get(f"http://127.0.0.1:{port}/metrics")
        errors = {labels["client"]: labels for labels, _ in find(exposition, "sepm_exporter_file_error")}
        assert set(errors) == set(targets)
        shown = {(e["reason"], e["file"].removeprefix(name)) for name, e in errors.items()}
        assert shown == {("outside_root", "/SyLink.xml")}, shown  # one answer for all five
        assert find(exposition, "sepm_client_sylink_info", client="LINK-SYLINK") == []
        # Behind the link, a SyLink.xml appears or goes: nothing changes in what is shown.
        (outside / "empty" / "SyLink.xml").write_bytes(lab.client_path("WS-0002").read_bytes())
        (outside / "with-sylink" / "SyLink.xml").unlink()
        lab.write_variant("crlf", lab.client_path("WS-0003"))  # a real change, to know a re-read happened
        wanted = lab.client_path("WS-0003").read_bytes()
        digest = hashlib.sha256(wanted).hexdigest()
        wait_for(lambda: find(get(f"http://127.0.0.1:{port}/metrics"), "sepm_client_sylink_info",
                              client="WS-0003")[0][0]["sha256"] == digest, timeout=30)
        again = {labels["client"]: labels for labels, _ in find(get(f"http://127.0.0.1:{port}/metrics"),
                                                                 "sepm_exporter_file_error")}
        assert again == errors
    finally:
        stop(exporter)
        (outside / "unreadable").chmod(0o755)
    log = (tmp_path / "exporter.log").read_text(encoding="utf-8")
    assert "no-such-folder" not in log and "with-sylink" not in log  # the targets are never named


def test_folders_without_a_sylink_are_counted(lab: estate.Lab, tmp_path: Path) -> None:
    for i in range(250):
        (lab.clients_root / f"EMPTY-{i:04d}").mkdir()
    (lab.clients_root / "stray.txt").write_text("not a client", encoding="utf-8")
    port = free_port()
    exporter = start_exporter(lab.config_path, port)
    try:
        exposition = get(f"http://127.0.0.1:{port}/metrics")
        key = str(lab.clients_root)
        assert one(exposition, "sepm_exporter_client_folders_without_sylink", client_root=key) == 251
        assert one(exposition, "sepm_exporter_files", kind="client_sylink") == len(lab.state.clients)
        assert find(exposition, "sepm_exporter_file_error") == []  # empty folders are not errors, only counted
    finally:
        stop(exporter)
