"""Every way the API can fail, through a real `serve` and a real `lab api` process: each gives
`sepm_api_up 0` with its reason, one log line without the password or token, and /metrics keeps
answering at once, also while the API hangs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import samples
from e2e.lab_api import start_lab_api
from helpers import free_port, get, start_exporter, stop, wait_for
from sepm_exporter.lab import estate
from sepm_exporter.lab.api import config_with_api, set_fault

pytestmark = pytest.mark.e2e
PASSWORD = "s3cret-api-password"


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.lab = estate.init(tmp_path / "lab", groups=2, clients=4, heartbeat_seconds=30)
        self.password = tmp_path / "password"
        self.password.write_text(PASSWORD + "\n", encoding="utf-8")
        self.api_port, self.port = free_port(), free_port()
        self.api_log, self.log = tmp_path / "lab-api.log", tmp_path / "exporter.log"
        self.api = start_lab_api(self.lab.directory, "SEPM1", self.api_port, self.password, self.api_log)
        config = config_with_api(self.lab, {"SEPM1": (self.api_port, self.password)}, interval=1, timeout=0.5)
        self.exporter = start_exporter(config, self.port, log=self.log)
        self.slowest = 0.0

    def metric(self, name: str, **labels: str) -> float | None:
        started = time.monotonic()
        found = samples(get(f"http://127.0.0.1:{self.port}/metrics", timeout=2))
        self.slowest = max(self.slowest, time.monotonic() - started)
        return found.get((name, frozenset({"server": "SEPM1", **labels}.items())))

    def restart_api(self, password: str) -> None:
        stop(self.api)
        other = self.tmp / "other-password"
        other.write_text(password, encoding="utf-8")
        self.api = start_lab_api(self.lab.directory, "SEPM1", self.api_port, other, self.api_log)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack(tmp_path)
    try:
        yield built
    finally:
        set_fault(built.lab.directory, "SEPM1", "none")
        stop(built.exporter)
        stop(built.api)


def test_every_fault_is_down_with_its_reason_and_metrics_keep_answering(stack: Stack) -> None:
    wait_for(lambda: stack.metric("sepm_api_up") == 1.0, timeout=30)
    cases = [("500", "http_status"), ("close", "connection"), ("hang", "timeout"),
             ("invalid-json", "invalid_response"), ("token-expired", "token_expired"), ("wrong-password", "login_refused")]
    for fault, reason in cases:
        before = stack.metric("sepm_api_request_errors_total", reason=reason)
        assert before == 0.0, reason  # every reason exists from the start
        if fault == "wrong-password":
            stack.restart_api("changed-on-the-server")  # sessions are gone, and the exporter's password is wrong
        elif fault == "close":  # once through the documented command
            subprocess.run([sys.executable, "-m", "sepm_exporter", "lab", "api-fault", str(stack.lab.directory), "SEPM1",
                            fault], check=True, capture_output=True)
        else:
            set_fault(stack.lab.directory, "SEPM1", fault)
        wait_for(lambda r=reason: stack.metric("sepm_api_up") == 0.0  # type: ignore[misc]
                 and (stack.metric("sepm_api_request_errors_total", reason=r) or 0) >= 1, timeout=20)
        assert stack.metric("sepm_api_group_clients", group_id=stack.lab.state.groups[0].group_id, status="online") == 2.0
        if fault == "wrong-password":
            stack.restart_api(PASSWORD)
        else:
            set_fault(stack.lab.directory, "SEPM1", "none")
        wait_for(lambda: stack.metric("sepm_api_up") == 1.0, timeout=20)
    log = stack.log.read_text(encoding="utf-8")
    failed = [line for line in log.splitlines() if 'msg="api poll failed"' in line]
    logged = [re.search(r"reason=(\w+)", line).group(1) for line in failed]  # type: ignore[union-attr]
    # One line per fault; a restart of the lab API also shows as a short `connection` failure.
    assert set(logged) == {r for _, r in cases} and len(logged) <= len(cases) + 2, logged
    assert PASSWORD not in log and "changed-on-the-server" not in log
    assert "Bearer" not in log and not re.search(r"\b[0-9a-f]{32}\b", log)  # lab tokens are 32 lowercase hex digits
    for page in ("/metrics", "/"):
        assert PASSWORD not in get(f"http://127.0.0.1:{stack.port}{page}").decode()
    print(f"slowest /metrics during the faults: {stack.slowest * 1000:.0f} ms")
    assert stack.slowest < 1.0
