"""Real Prometheus and Alertmanager on loopback, from Debian's packages; skipped cleanly when absent."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, get, wait_for

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class Prometheus:
    """A Prometheus process with its own data folder; `query` answers through the HTTP API."""

    def __init__(self, workdir: Path, config: str, rules: list[Path] | None = None) -> None:
        if PROMETHEUS is None:
            pytest.skip("prometheus is not installed (apt-get install prometheus)")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(config, encoding="utf-8")
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=self.log,
        )
        wait_for(lambda: get(f"http://127.0.0.1:{self.port}/-/ready"), timeout=60)

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        answer = json.loads(get(url))
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class Alertmanager:
    """An Alertmanager that sends to a webhook on loopback."""

    def __init__(self, workdir: Path, config: str) -> None:
        if ALERTMANAGER is None:
            pytest.skip("alertmanager is not installed (apt-get install prometheus-alertmanager)")
        self.port = free_port()
        cluster = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "alertmanager.yml").write_text(config, encoding="utf-8")
        self.log = open(workdir / "alertmanager.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={workdir / 'alertmanager.yml'}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--cluster.listen-address=127.0.0.1:{cluster}",
             "--log.level=warn"],
            stdout=self.log, stderr=self.log,
        )
        wait_for(lambda: get(f"http://127.0.0.1:{self.port}/-/ready"), timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
