"""`sepm-exporter healthcheck` against a real `serve`: plain, basic auth, TLS, client certificates, nothing listening."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from helpers import free_port, get, stop, wait_for
from sepm_exporter.lab import estate, pki
from serving.test_web import _web_config


def _serve(lab: estate.Lab, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`serve` with its listen address and web config from the environment, as the container sets them."""
    return subprocess.Popen([sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _health(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sepm_exporter", "healthcheck", *extra], env=env,
                          capture_output=True, text=True, timeout=30)


def _env(port: int, web: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "SEPM_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    env.pop("SEPM_EXPORTER_WEB_CONFIG_FILE", None)
    if web is not None:
        env["SEPM_EXPORTER_WEB_CONFIG_FILE"] = str(web)
    return env


def test_plain_then_stopped(lab: estate.Lab) -> None:
    port = free_port()
    env = _env(port)
    process = _serve(lab, env)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/-/healthy"), timeout=30)
        assert _health(env).returncode == 0
    finally:
        stop(process)
    result = _health(env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and result.stderr.startswith("unhealthy: 127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_basic_auth_and_tls_from_the_same_web_config(lab: estate.Lab, tmp_path: Path) -> None:
    port = free_port()
    env = _env(port, _web_config(tmp_path))
    process = _serve(lab, env)
    try:
        wait_for(lambda: _health(env).returncode == 0, timeout=30)
        plain = _health(_env(port))  # the wrong web config: plain HTTP to a TLS port
        assert plain.returncode == 1 and plain.stderr.startswith("unhealthy:"), plain.stderr
    finally:
        stop(process)


def test_required_client_certificate_counts_as_alive(lab: estate.Lab, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=1)
    server_key, ca_key = pki.new_key(2048), pki.new_key(2048)
    (tmp_path / "tls.crt").write_bytes(pki.pem(pki.self_signed(server_key, "localhost", now, later)))
    (tmp_path / "tls.key").write_bytes(pki.key_pem(server_key))
    (tmp_path / "ca.crt").write_bytes(pki.pem(pki.ca(ca_key, "scrapers", now, later)))
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                   "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n", encoding="utf-8")
    port = free_port()
    env = _env(port, web)
    process = _serve(lab, env)
    try:
        wait_for(lambda: _health(env).returncode == 0, timeout=30)
    finally:
        stop(process)
    assert _health(env).returncode == 1
