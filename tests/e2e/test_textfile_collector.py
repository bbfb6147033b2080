"""The textfile command feeds a real node_exporter textfile collector, once and on a loop."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import find
from helpers import free_port, get, stop, wait_for
from sepm_exporter.lab import estate

CRT = "apache/conf/ssl/server.crt"  # the keystore (tomcat/etc/keystore.jks) is a certificate file too

pytestmark = pytest.mark.e2e
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


def test_node_exporter_serves_the_file_and_the_loop_follows_a_renewal(lab: estate.Lab, tmp_path: Path) -> None:
    if NODE_EXPORTER is None:
        pytest.skip("node_exporter is not installed (apt-get install prometheus-node-exporter)")
    folder = tmp_path / "textfile"
    folder.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "textfile", "--config", str(lab.config_path),
         "--output", str(folder / "sepm.prom"), "--interval", "0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    port = free_port()
    node = subprocess.Popen(
        [NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={folder}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        def scraped() -> bytes | None:
            body = get(url)
            return body if b"sepm_certificate_info" in body else None

        body = wait_for(scraped, timeout=30)
        assert find(body, "node_textfile_scrape_error")[0][1] == 0, "node_exporter accepted the file"
        (sha1,) = find(body, "sepm_certificate_info", server="SEPM1", file=CRT)
        assert sha1[0]["signature_hash"] == "sha1"
        lab.renew("SEPM1", new_key=True)

        def renewed() -> bytes | None:
            body = get(url)
            return body if find(body, "sepm_certificate_info", server="SEPM1", signature_hash="sha256") else None

        body = wait_for(renewed, timeout=30)
        assert find(body, "sepm_server_key_changed_timestamp_seconds", server="SEPM1")
        assert not list(folder.glob(".*.tmp")), "no temporary file is left for the collector to see"
    finally:
        stop(node)
        stop(writer)
