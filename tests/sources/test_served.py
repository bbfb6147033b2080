"""What clients are served: the keystore against server.crt, and real TLS listeners on loopback."""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import find, one
from helpers import free_port
from sepm_exporter.assembly import prober_for
from sepm_exporter.cli import main
from sepm_exporter.judge.findings import findings
from sepm_exporter.lab import estate, pki
from sepm_exporter.lab.tls import BlackHole, TlsListener, server_context
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import ConfigError, ProbeTarget, load_config, parse_config
from sepm_exporter.sources.probes import probe, run_round

CRT = "apache/conf/ssl/server.crt"
KEYSTORE = "tomcat/etc/keystore.jks"


def serve(lab: estate.Lab, server: str, port: int = 0, source: str = "apache") -> TlsListener:
    """What a service does when it starts: load the pair on disk now, and keep serving it."""
    key, chain = lab.served_pair(server, source)
    return TlsListener(server_context(key, chain), port=port).start()


def probed(lab: estate.Lab, endpoints: list[str], timeout: float = 2.0) -> Path:
    """The lab's config with SEPM1 probing `endpoints`."""
    text = lab.config_path.read_text(encoding="utf-8").replace(
        "    site: tokyo\n", f"    site: tokyo\n    probes: {endpoints!r}\n".replace("'", '"'), 1
    )
    path = lab.directory / "probed.yml"
    path.write_text(text + f"probe:\n  interval: 1\n  timeout: {timeout}\n", encoding="utf-8")
    return path


@pytest.fixture
def listener(lab: estate.Lab) -> Iterator[TlsListener]:
    running = serve(lab, "SEPM1")
    yield running
    running.close()


# -- keystore ---------------------------------------------------------------------------------------

def test_the_keystore_is_a_certificate_file_of_the_server(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    text = exporter.exposition
    (crt,) = find(text, "sepm_certificate_info", server="SEPM1", file=CRT)
    (jks,) = find(text, "sepm_certificate_info", server="SEPM1", file=KEYSTORE)
    assert crt[0]["public_key_sha256"] == jks[0]["public_key_sha256"]
    assert one(text, "sepm_certificate_file_certificates", server="SEPM1", file=KEYSTORE) == 1
    assert one(text, "sepm_server_keystore_key_match", server="SEPM1") == 1
    assert one(text, "sepm_exporter_files", kind="server_certificate") == 4
    assert lab.keystore_password.encode() not in text


@pytest.mark.parametrize("only", ["skip", "only"])
def test_renewing_one_copy_only_is_a_keystore_mismatch(lab: estate.Lab, only: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sepm_exporter")
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    lab.renew("SEPM1", new_key=True, keystore=only)
    exporter.full_scan()
    text = exporter.exposition
    assert one(text, "sepm_server_keystore_key_match", server="SEPM1") == 0
    assert one(text, "sepm_server_keystore_key_match", server="SEPM2") == 1
    found = findings(exporter.scanner.inventory, exporter.history, exporter.derived, exporter.clock())
    assert [f.subject for f in found if f.alert == "SEPMKeystoreKeyMismatch"] == ["server SEPM1"]
    lab.write_keystore("SEPM1", password="a-password-nobody-configured")  # the admin re-imports the pair
    exporter.full_scan()
    assert one(exporter.exposition, "sepm_server_keystore_key_match", server="SEPM1") == 1
    assert "a-password-nobody-configured" not in caplog.text + exporter.exposition.decode()


def test_an_install_without_a_keystore_publishes_nothing_for_it(lab: estate.Lab) -> None:
    lab.keystore_path("SEPM2").unlink()
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    text = exporter.exposition
    assert find(text, "sepm_certificate_info", server="SEPM2", file=KEYSTORE) == []
    assert find(text, "sepm_server_keystore_key_match", server="SEPM2") == []
    assert find(text, "sepm_exporter_file_error") == []


# -- probes -----------------------------------------------------------------------------------------

def test_served_old_certificate_after_a_renewal_on_disk(lab: estate.Lab, listener: TlsListener) -> None:
    """Renewed on disk, not restarted: mismatch; the service restarted onto the new pair: match."""
    exporter = Exporter(load_config(probed(lab, [f"127.0.0.1:{listener.port}"])))
    exporter.full_scan()
    prober = prober_for(exporter)
    prober.round()
    endpoint = f"127.0.0.1:{listener.port}"
    assert one(exporter.exposition, "sepm_probe_up", server="SEPM1", endpoint=endpoint) == 1
    assert one(exporter.exposition, "sepm_served_certificate_key_match", server="SEPM1", endpoint=endpoint) == 1

    lab.renew("SEPM1", new_key=True)
    exporter.full_scan()
    results = prober.round()
    text = exporter.exposition
    assert one(text, "sepm_served_certificate_key_match", server="SEPM1", endpoint=endpoint) == 0
    (served,) = find(text, "sepm_probe_certificate_info", endpoint=endpoint)
    assert served[0]["signature_hash"] == "sha1" and served[0]["key_bits"] == "1024"  # the 2016 certificate
    from sepm_exporter.judge.served import probe_findings

    (mismatch,) = probe_findings(results, exporter.scanner.inventory)
    assert mismatch.alert == "SEPMServedCertificateMismatch" and mismatch.severity.name == "CRITICAL"

    listener.close()
    restarted = serve(lab, "SEPM1", port=listener.port)
    try:
        prober.round()
        assert one(exporter.exposition, "sepm_served_certificate_key_match", server="SEPM1", endpoint=endpoint) == 1
    finally:
        restarted.close()


def test_tomcat_serving_an_old_keystore(lab: estate.Lab) -> None:
    """Only Apache's copy renewed and restarted: 443 matches, 8443 (from keystore.jks) does not."""
    lab.renew("SEPM1", new_key=True, keystore="skip")
    apache, tomcat = serve(lab, "SEPM1"), serve(lab, "SEPM1", source="tomcat")
    try:
        exporter = Exporter(load_config(probed(lab, [f"127.0.0.1:{apache.port}", f"127.0.0.1:{tomcat.port}"])))
        exporter.full_scan()
        prober_for(exporter).round()
        text = exporter.exposition
        assert one(text, "sepm_served_certificate_key_match", endpoint=f"127.0.0.1:{apache.port}") == 1
        assert one(text, "sepm_served_certificate_key_match", endpoint=f"127.0.0.1:{tomcat.port}") == 0
        assert one(text, "sepm_server_keystore_key_match", server="SEPM1") == 0
    finally:
        apache.close()
        tomcat.close()


def test_failures_are_reasons_and_the_black_hole_costs_one_timeout(lab: estate.Lab) -> None:
    hole = BlackHole()
    closed = free_port()
    try:
        started = time.monotonic()
        results = run_round([("SEPM1", ProbeTarget("127.0.0.1", hole.port)), ("SEPM1", ProbeTarget("127.0.0.1", closed))], 0.5)
        elapsed = time.monotonic() - started
    finally:
        hole.close()
    assert [(r.up, r.reason) for r in results] == [(False, "timeout"), (False, "refused")]
    assert 0.5 <= elapsed < 1.5


def test_sni_is_the_host_name_or_the_configured_name(lab: estate.Lab) -> None:
    names: list[str | None] = []
    key, chain = lab.served_pair("SEPM1")
    context = server_context(key, chain)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc,return-value]
    running = TlsListener(context).start()
    try:
        import asyncio

        for target in (ProbeTarget("localhost", running.port), ProbeTarget("127.0.0.1", running.port),
                       ProbeTarget("127.0.0.1", running.port, server_name="sepm1.example")):
            assert asyncio.run(probe("SEPM1", target, 2.0)).up
    finally:
        running.close()
    assert names == ["localhost", None, "sepm1.example"]


def test_ca_file_validates_the_served_leaf(lab: estate.Lab, listener: TlsListener, tmp_path: Path) -> None:
    import asyncio

    own, other = tmp_path / "own.pem", tmp_path / "other.pem"
    own.write_bytes(lab.certificate_path("SEPM1").read_bytes())  # self-signed: its own issuer
    other.write_bytes(lab.certificate_path("SEPM2").read_bytes())
    good = asyncio.run(probe("SEPM1", ProbeTarget("127.0.0.1", listener.port, ca_file=own), 2.0))
    bad = asyncio.run(probe("SEPM1", ProbeTarget("127.0.0.1", listener.port, ca_file=other), 2.0))
    missing = asyncio.run(probe("SEPM1", ProbeTarget("127.0.0.1", listener.port, ca_file=tmp_path / "none.pem"), 2.0))
    assert (good.verified, bad.verified, missing.verified) == (True, False, False)
    assert good.leaf == bad.leaf


def test_a_plain_tcp_service_is_a_tls_error(lab: estate.Lab) -> None:
    import asyncio
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = asyncio.run(probe("SEPM1", ProbeTarget("127.0.0.1", server.getsockname()[1]), 2.0))
    finally:
        server.close()
    assert (result.up, result.reason) == (False, "tls_error")


def test_no_probes_means_no_connections_and_empty_families(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    prober = prober_for(exporter)
    assert prober.targets == []
    prober.start()
    assert not prober.thread.is_alive()
    text = exporter.exposition.decode()
    assert "# TYPE sepm_probe_up gauge" in text and "sepm_probe_up{" not in text


def test_check_reports_the_served_mismatch(lab: estate.Lab, listener: TlsListener,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = probed(lab, [f"127.0.0.1:{listener.port}"])
    lab.renew("SEPM1", new_key=False)  # same key: not a mismatch
    assert "serves another key" not in _check(config, capsys)
    lab.renew("SEPM1", new_key=True)
    assert "serves another key than server.crt" in _check(config, capsys)


def _check(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["check", "--config", str(config)])
    return capsys.readouterr().out


def test_probe_config_errors_name_their_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"servers": [{"name": "a", "root": "/x", "probes": ["nohost", "h:0", {"endpoint": "h:1", "pw": 1}, "h:2", "h:2"]}],
                      "probe": {"interval": 0, "bogus": 1}})
    assert caught.value.problems == [
        "servers[0].probes[0]: must be host:port with a port from 1 to 65535, got 'nohost'",
        "servers[0].probes[1]: must be host:port with a port from 1 to 65535, got 'h:0'",
        "servers[0].probes[2].pw: unknown key (allowed: ca_file, endpoint, server_name)",
        "servers[0].probes[4]: duplicate endpoint h:2",
        "probe.bogus: unknown key (allowed: interval, timeout)",
        "probe.interval: must be at least 1.0",
    ]
    config = parse_config({"servers": [{"name": "a", "root": "/x", "probes": ["[::1]:8443", {"endpoint": "h:443", "ca_file": "ca.pem"}]}]},
                          base=Path("/etc/sepm"))
    assert [p.endpoint for p in config.servers[0].probes] == ["[::1]:8443", "h:443"]
    assert config.servers[0].probes[1].ca_file == Path("/etc/sepm/ca.pem")
    assert (config.probe_interval, config.probe_timeout) == (60.0, 5.0)
    assert dataclasses.replace(config.servers[0], probes=()).probes == ()


def test_legacy_tls_is_still_read(lab: estate.Lab) -> None:
    """A 2012 SEPM: 1024-bit SHA-1 certificate over TLS 1.2 at most; the probe must still read it."""
    key, chain = lab.served_pair("SEPM2")
    context = server_context(key, chain)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    running = TlsListener(context).start()
    try:
        import asyncio

        result = asyncio.run(probe("SEPM2", ProbeTarget("127.0.0.1", running.port), 2.0))
    finally:
        running.close()
    assert result.up and result.leaf is not None and result.leaf.key_bits == 1024
    assert pki.pem(chain[0])
