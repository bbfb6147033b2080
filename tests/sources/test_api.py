"""The API client and poller against the lab's real HTTPS API on loopback: login, paging, token
renewal, SEPM 14.3's dropped connection, and every fault with its reason and a secret-free log."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from helpers import free_port
from sepm_exporter.lab import api as lab_api
from sepm_exporter.lab import estate
from sepm_exporter.logs import LogfmtFormatter
from sepm_exporter.metrics import api as api_metrics
from sepm_exporter.sepm.rest import ApiReason
from sepm_exporter.settings.config import ApiConfig, ServerConfig
from sepm_exporter.sources.api import ApiClient, ApiError, ApiPoller, ApiState, poll

PASSWORD = "pa55-w0rd-lab"


@pytest.fixture
def served(lab: estate.Lab, tmp_path: Path) -> Iterator[tuple[lab_api.LabApi, ApiConfig]]:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    server = lab_api.serve(lab.directory, "SEPM1", f"127.0.0.1:{free_port()}", PASSWORD)
    config = ApiConfig(url=server.url, username="admin", password_file=password_file, ca_file=server.ca_file,
                       interval=5.0, timeout=2.0, page_size=5)
    yield server, config
    lab_api.set_fault(lab.directory, "SEPM1", "none")
    server.shutdown()
    server.server_close()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(LogfmtFormatter().format(record))

    logger = logging.getLogger("sepm_exporter")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_poll_pages_every_group_and_computer(served: tuple[lab_api.LabApi, ApiConfig], lab: estate.Lab) -> None:
    server, config = served
    client = ApiClient(config)
    snapshot = poll(client, server.view().taken_at)
    assert {g.group_id for g in snapshot.groups} == {g.group_id for g in lab.state.groups}
    assert sum(g.online for g in snapshot.groups) == 12 and sum(g.offline for g in snapshot.groups) == 0
    assert sum(g.on_current_policy for g in snapshot.groups) == 12  # every client pulled at init
    assert dict(snapshot.totals) == {"online": 12, "offline": 0}
    assert [(p.name, p.status) for p in snapshot.partners] == [("osaka", "SUCCEEDED")]
    assert snapshot.database_certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert client.logins == 1
    assert server.requests == 1 + 1 + 3 + 3  # login, /groups (1 page of 5), /computers (3 pages of 5), 3 single answers
    client.close()


def test_token_renewed_before_expiry_and_after_a_401(served: tuple[lab_api.LabApi, ApiConfig]) -> None:
    server, config = served
    now = [0.0]
    client = ApiClient(config, clock=lambda: now[0])
    client.get("/version")
    now[0] = 3600 * 0.85  # inside the lifetime: the token is kept
    client.get("/version")
    assert client.logins == 1
    now[0] = 3600 * 0.95  # past 90 %: a new login before the server would refuse it
    client.get("/version")
    assert client.logins == 2
    server.tokens.clear()  # the server forgets every session (a restart): a 401, one login, success
    assert client.get("/version")["API_VERSION"] == "14.3.9000"
    assert client.logins == 3
    client.close()


def test_a_reused_connection_dropped_after_a_post_is_survived(served: tuple[lab_api.LabApi, ApiConfig]) -> None:
    server, config = served
    trust = ssl.create_default_context(cafile=str(config.ca_file))
    with httpx.Client(verify=trust) as naive:  # what SEPM 14.3 does to a client that reuses the connection
        naive.post(f"{server.url}/identity/authenticate", json={"username": "admin", "password": PASSWORD, "domain": ""})
        with pytest.raises(httpx.RemoteProtocolError):
            naive.get(f"{server.url}/version")
    client = ApiClient(config)
    client.login()
    client._send("POST", "/identity/authenticate", json={"username": "admin", "password": PASSWORD, "domain": ""})
    assert client.get("/version")["version"]  # the GET met the dropped connection and was sent again
    client.close()


def test_tls_is_verified_unless_told_otherwise(served: tuple[lab_api.LabApi, ApiConfig]) -> None:
    _, config = served
    with pytest.raises(ApiError) as caught:
        ApiClient(replace(config, ca_file=None)).login()
    assert caught.value.reason is ApiReason.TLS
    ApiClient(replace(config, ca_file=None, insecure_skip_verify=True)).login()


def test_password_from_the_environment(served: tuple[lab_api.LabApi, ApiConfig],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, config = served
    env = replace(config, password_file=None, password_env="SEPM_API_PASSWORD")
    with pytest.raises(ApiError) as caught:
        ApiClient(env).login()
    assert caught.value.reason is ApiReason.PASSWORD_UNREADABLE
    monkeypatch.setenv("SEPM_API_PASSWORD", PASSWORD)
    ApiClient(env).login()


@pytest.mark.parametrize(("fault", "reason"), [
    ("wrong-password", ApiReason.LOGIN_REFUSED),
    ("token-expired", ApiReason.TOKEN_EXPIRED),
    ("500", ApiReason.HTTP_STATUS),
    ("close", ApiReason.CONNECTION),
    ("hang", ApiReason.TIMEOUT),
    ("invalid-json", ApiReason.INVALID_RESPONSE),
])
def test_each_fault_is_down_with_its_reason_and_a_clean_log(
    served: tuple[lab_api.LabApi, ApiConfig], lab: estate.Lab, log_lines: list[str], fault: str, reason: ApiReason,
) -> None:
    server, config = served
    config = replace(config, timeout=0.5)
    reports: list[ApiState] = []
    poller = ApiPoller(ServerConfig("SEPM1", "tokyo", lab.server_root("SEPM1"), api=config), reports.append)
    good = poller.poll_once()
    assert good.up and good.snapshot is not None
    tokens = set(server.tokens)
    if fault == "wrong-password":
        server.password = "rotated-elsewhere"
        poller.client._token = None  # the next poll logs in
    else:
        lab_api.set_fault(lab.directory, "SEPM1", fault)
    bad = poller.poll_once()
    lab_api.set_fault(lab.directory, "SEPM1", "none")
    assert (bad.up, bad.last_reason) == (False, reason.value)
    assert bad.errors == {reason.value: 1}
    assert bad.snapshot == good.snapshot and bad.last_success == good.last_success  # last good figures kept
    families = api_metrics.families([bad])
    assert families["sepm_api_up"] == [(("SEPM1",), 0.0)]
    assert ((("SEPM1", reason.value), 1.0)) in families["sepm_api_request_errors_total"]
    assert families["sepm_api_group_clients"]  # still shown, as of the last success
    failed = [line for line in log_lines if 'msg="api poll failed"' in line]
    assert len(failed) == 1 and f"reason={reason.value}" in failed[0]
    text = "\n".join(log_lines)
    assert PASSWORD not in text and "rotated-elsewhere" not in text
    assert not any(token in text for token in tokens | set(server.tokens))
    poller.client.close()
