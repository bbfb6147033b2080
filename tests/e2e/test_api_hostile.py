"""A hostile SEPM API against a real `serve`: the lab API process (`lab api`) switched to each of its
hostile faults in turn. Each poll ends within its deadline as `sepm_api_up 0` with its reason
counted again and again (never one poll hanging), /metrics answers at once, the poller recovers when
the API behaves again, no crash is logged, and the exporter's peak RSS stays under 400 MB."""

from __future__ import annotations

import re
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
PASSWORD = "hostile-api-password"
TIMEOUT = 2.0  # each request's deadline
INTERVAL = 2.5
RSS_BUDGET_MB = 400


class Hostile:
    def __init__(self, tmp_path: Path) -> None:
        self.lab = estate.init(tmp_path / "lab", groups=2, clients=4, heartbeat_seconds=30)
        password = tmp_path / "password"
        password.write_text(PASSWORD, encoding="utf-8")
        self.api_port, self.port = free_port(), free_port()
        self.log = tmp_path / "exporter.log"
        self.api = start_lab_api(self.lab.directory, "SEPM1", self.api_port, password, tmp_path / "lab-api.log")
        config = config_with_api(self.lab, {"SEPM1": (self.api_port, password)}, interval=INTERVAL, timeout=TIMEOUT)
        self.exporter = start_exporter(config, self.port, log=self.log)
        self.slowest = 0.0

    def exposition(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        started = time.monotonic()
        found = samples(get(f"http://127.0.0.1:{self.port}/metrics", timeout=5))
        self.slowest = max(self.slowest, time.monotonic() - started)
        return found

    def metric(self, name: str, **labels: str) -> float | None:
        return self.exposition().get((name, frozenset({"server": "SEPM1", **labels}.items())))

    def errors(self, reason: str) -> float:
        return self.metric("sepm_api_request_errors_total", reason=reason) or 0.0

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.exporter.pid}/status").read_text(encoding="ascii")
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Hostile]:
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak RSS is read from /proc/PID/status (Linux)")
    built = Hostile(tmp_path)
    try:
        yield built
    finally:
        set_fault(built.lab.directory, "SEPM1", "none")
        stop(built.exporter)
        stop(built.api)


CASES = [
    ("drip", "timeout"),  # one byte every 0.2 s: each read succeeds, only the whole-request deadline ends it
    ("huge-label", "too_large"),  # a 60 MB group name: never a label
    ("oversize", "too_large"),  # 200 MB, chunked: cut at max_response_bytes
    ("deep", "invalid_response"),  # [[[[... 100,000 deep: RecursionError inside json
    ("bignum-login", "invalid_response"),  # tokenExpiration of 400 digits: OverflowError as a float
    ("bignum-computers", "invalid_response"),  # lastUpdateTime of 400 digits
    ("nonascii-token", "invalid_response"),  # a token no HTTP header can carry: UnicodeEncodeError
    ("endless", "invalid_response"),  # page 1 again and again, lastPage never true
    ("endless-totals", "invalid_response"),  # distinct pages past the totalPages they claim
]


def test_each_hostile_answer_ends_its_poll_with_a_reason_and_the_poller_recovers(hostile: Hostile) -> None:
    group = hostile.lab.state.groups[0].group_id
    wait_for(lambda: hostile.metric("sepm_api_up") == 1.0, timeout=30)
    online = hostile.metric("sepm_api_group_clients", group_id=group, status="online")
    assert online == 2.0
    for fault, reason in CASES:
        before = hostile.errors(reason)
        set_fault(hostile.lab.directory, "SEPM1", fault)
        # Two more failures counted: the first poll ended (within its deadline) and the next one began.
        wait_for(lambda r=reason, b=before: hostile.metric("sepm_api_up") == 0.0  # type: ignore[misc]
                 and hostile.errors(r) >= b + 2, timeout=8 * INTERVAL + 4 * TIMEOUT)
        # The last good figures stay; nothing of the hostile answer became a series.
        assert hostile.metric("sepm_api_group_clients", group_id=group, status="online") == online, fault
        assert max(len(name) + sum(len(k) + len(v) for k, v in labels) for name, labels in hostile.exposition()) < 2000
        set_fault(hostile.lab.directory, "SEPM1", "none")
        wait_for(lambda: hostile.metric("sepm_api_up") == 1.0, timeout=4 * INTERVAL + 2 * TIMEOUT)
    log = hostile.log.read_text(encoding="utf-8")
    assert "api poll crashed" not in log and "Traceback" not in log
    logged = {m.group(1) for m in re.finditer(r'msg="api poll failed".*?reason=(\w+)', log)}
    assert logged == {reason for _, reason in CASES}, logged
    assert PASSWORD not in log and "tökén" not in log
    peak = hostile.peak_rss_mb()
    print(f"exporter peak RSS {peak:.0f} MB, slowest /metrics {hostile.slowest * 1000:.0f} ms")
    assert peak < RSS_BUDGET_MB
    assert hostile.slowest < 2.0


def test_duplicate_groups_and_computers_are_counted_once_and_said(hostile: Hostile) -> None:
    group = hostile.lab.state.groups[0].group_id
    wait_for(lambda: hostile.metric("sepm_api_up") == 1.0, timeout=30)
    assert hostile.metric("sepm_api_duplicate_items", listing="groups") == 0.0
    assert hostile.metric("sepm_api_duplicate_items", listing="computers") == 0.0
    before = {key: value for key, value in hostile.exposition().items() if key[0].startswith("sepm_api_group")}
    set_fault(hostile.lab.directory, "SEPM1", "duplicates")
    clients, groups = len(hostile.lab.state.clients), len(hostile.lab.state.groups)
    wait_for(lambda: hostile.metric("sepm_api_duplicate_items", listing="computers") == clients, timeout=6 * INTERVAL)
    assert hostile.metric("sepm_api_duplicate_items", listing="groups") == groups
    assert hostile.metric("sepm_api_up") == 1.0
    after = {key: value for key, value in hostile.exposition().items() if key[0].startswith("sepm_api_group")}
    assert after == before  # every group and its clients counted once, as without the repeats
    assert hostile.metric("sepm_api_group_clients", group_id=group, status="online") == 2.0
