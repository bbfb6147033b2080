from __future__ import annotations

import base64
import datetime as dt
import signal
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from conftest import one
from helpers import free_port, get, start_exporter, stop
from sepm_exporter.lab import estate, pki
from sepm_exporter.runtime import Exporter
from sepm_exporter.serving import landing, runbooks
from sepm_exporter.serving.web import WebServer
from sepm_exporter.settings.config import load_config
from sepm_exporter.settings.webconfig import load_web_config


def test_endpoints_and_clean_sigterm(lab: estate.Lab, tmp_path: Path) -> None:
    port = free_port()
    process = start_exporter(lab.config_path, port, log=tmp_path / "log")
    try:
        base = f"http://127.0.0.1:{port}"
        assert one(get(base + "/metrics"), "sepm_exporter_root_up", server="SEPM1") == 1
        assert b"process_resident_memory_bytes" in get(base + "/metrics")
        assert get(base + "/-/healthy") == b"Healthy.\n"
        page = get(base + "/").decode()
        assert 'href="/metrics"' in page and "SEPM1" in page and "sha1" in page
        request = urllib.request.Request(base + "/metrics", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Encoding"] == "gzip"
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(base + "/nope")
        assert missing.value.code == 404
    finally:
        assert stop(process) == 0  # SIGTERM ends it cleanly
    assert process.returncode == 0 and signal.SIGTERM


def _web_config(tmp_path: Path) -> Path:
    key = pki.new_key(2048)
    now = dt.datetime.now(dt.UTC)
    (tmp_path / "tls.crt").write_bytes(pki.pem(pki.self_signed(key, "localhost", now, now + dt.timedelta(days=1))))
    (tmp_path / "tls.key").write_bytes(pki.key_pem(key))
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS12\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n",
        encoding="utf-8",
    )
    return path


def test_tls_and_basic_auth(lab: estate.Lab, tmp_path: Path) -> None:
    port = free_port()
    process = None
    web = _web_config(tmp_path)
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
    context.check_hostname = False
    url = f"https://127.0.0.1:{port}/metrics"

    def fetch(user: str | None, password: str = "") -> int:
        headers = {}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        from helpers import wait_for

        assert wait_for(lambda: fetch("prometheus", "s3cret") == 200 or None, timeout=30)
        assert fetch("prometheus", "wrong") == 401
        assert fetch(None) == 401
        assert fetch("nobody", "s3cret") == 401
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(f"http://127.0.0.1:{port}/metrics")  # plain HTTP to the TLS port is refused
    finally:
        stop(process)


def test_client_certificates_and_minimum_tls_version(lab: estate.Lab, tmp_path: Path) -> None:
    """RequireAndVerifyClientCert with TLS 1.3 as the floor: no certificate, a stranger's, or TLS 1.2 is refused."""
    import subprocess
    import sys

    from helpers import wait_for

    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=1)
    server_key, ca_key, client_key, stranger_key = (pki.new_key(2048) for _ in range(4))
    (tmp_path / "tls.crt").write_bytes(pki.pem(pki.self_signed(server_key, "localhost", now, later)))
    (tmp_path / "tls.key").write_bytes(pki.key_pem(server_key))
    (tmp_path / "ca.crt").write_bytes(pki.pem(pki.ca(ca_key, "scrapers", now, later)))
    (tmp_path / "client.crt").write_bytes(pki.pem(pki.issued(client_key, "prometheus", ca_key, "scrapers", now, later)))
    (tmp_path / "client.key").write_bytes(pki.key_pem(client_key))
    (tmp_path / "stranger.crt").write_bytes(pki.pem(pki.self_signed(stranger_key, "stranger", now, later)))
    (tmp_path / "stranger.key").write_bytes(pki.key_pem(stranger_key))
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS13\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(tmp_path / "web.yml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def fetch(certificate: str | None, maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> int:
        context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
        context.check_hostname = False
        context.maximum_version = maximum
        if certificate is not None:
            context.load_cert_chain(tmp_path / f"{certificate}.crt", tmp_path / f"{certificate}.key")
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context, timeout=5) as response:
            return int(response.status)

    try:
        assert wait_for(lambda: fetch("client") == 200 or None, timeout=30)
        for certificate, maximum in ((None, ssl.TLSVersion.MAXIMUM_SUPPORTED), ("stranger", ssl.TLSVersion.MAXIMUM_SUPPORTED),
                                     ("client", ssl.TLSVersion.TLSv1_2)):
            with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
                fetch(certificate, maximum)
    finally:
        stop(process)


def test_send_parts_delivers_every_byte_in_order_across_partial_sends() -> None:
    """More parts than one sendmsg takes, through a small socket buffer: partial sends resume mid-part."""
    import socket
    import threading

    from sepm_exporter.serving.web import IOV_MAX, send_parts

    parts = [bytes([i % 251]) * (1 + (i * 37) % 4000) for i in range(IOV_MAX * 2 + 7)] + [b""]
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    received = bytearray()

    def read() -> None:
        while chunk := right.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    send_parts(left, parts)
    left.close()
    reader.join(30)
    right.close()
    assert bytes(received) == b"".join(parts)


def test_runbooks_are_served_under_the_same_auth(tmp_path: Path) -> None:
    """Every alert's runbook at /runbooks/<alert>, rendered, and refused without credentials when auth is on."""
    lab = estate.init(tmp_path / "lab", groups=1, clients=1)
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  oncall: '{hashed}'\n", encoding="utf-8")
    server = WebServer(exporter, load_web_config(tmp_path / "web.yml"), "127.0.0.1:0", "/metrics")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/runbooks/SEPMClientServerKeyUntrusted"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        auth = {"Authorization": "Basic " + base64.b64encode(b"oncall:pw").decode()}
        for name in runbooks.names():
            page = urllib.request.urlopen(urllib.request.Request(url.rsplit("/", 1)[0] + f"/{name}.md", headers=auth),
                                          timeout=5).read().decode()
            assert f"<h1>{name}</h1>" in page and "<h2>Fix</h2>" in page, name
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(url + "/../../../etc/passwd", headers=auth), timeout=5)
        assert missing.value.code == 404
    finally:
        server.close()
    assert "break-all" not in landing.CSS and "break-all" not in runbooks.CSS, "words never broken mid-word"


def test_markdown_is_escaped_and_runbook_links_stay_here() -> None:
    html = runbooks.render("# T\n\nSee [X](SEPMServerKeyChanged.md) and <script>alert(1)</script> `a<b`\n\n"
                           "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert '<a href="/runbooks/SEPMServerKeyChanged">X</a>' in html and "<script>" not in html
    assert "<code>a&lt;b</code>" in html and "<td>1</td><td>2</td>" in html
