from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from sepm_exporter.lab import estate, hostile, pki
from sepm_exporter.sepm.certificate import parse_certificate_file, parse_der
from sepm_exporter.sepm.reasons import ParseError, Reason

NOW = dt.datetime(2016, 3, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(("algorithm", "bits"), [("sha1", 1024), ("md5", 1024), ("sha256", 2048)])
def test_lab_certificates_carry_the_requested_signature_hash(algorithm: str, bits: int) -> None:
    key = pki.new_key(bits)
    der = pki.self_signed(key, "SEPM1", NOW, NOW + dt.timedelta(days=3650), algorithm)
    facts = parse_der(der)
    assert facts.signature_hash == algorithm
    assert facts.key_bits == bits
    assert facts.key_algorithm == "rsa"
    assert facts.subject == "CN=SEPM1,OU=scm,O=symantec.com"
    assert facts.issuer == facts.subject
    assert facts.serial == str(int(NOW.timestamp()))  # SEPM 12.1: serial is the creation time
    assert facts.not_before == NOW.timestamp()
    assert facts.not_after == (NOW + dt.timedelta(days=3650)).timestamp()
    # The signature really is of that hash, not just the OID: it verifies.
    from cryptography.hazmat.primitives.asymmetric import padding

    cert = x509.load_der_x509_certificate(der)
    key.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), pki._HASHES[algorithm])


def test_key_identity_survives_reissue_on_the_same_key() -> None:
    key = pki.new_key(1024)
    first = parse_der(pki.self_signed(key, "SEPM1", NOW, NOW + dt.timedelta(days=10), "sha1"))
    second = parse_der(pki.self_signed(key, "SEPM1", NOW, NOW + dt.timedelta(days=20), "sha256"))
    other = parse_der(pki.self_signed(pki.new_key(1024), "SEPM1", NOW, NOW + dt.timedelta(days=10), "sha1"))
    assert first.public_key_sha256 == second.public_key_sha256
    assert first.public_key_sha256 != other.public_key_sha256


def test_pem_bundle_takes_the_leaf_and_counts(tmp_path: Path) -> None:
    leaf = pki.self_signed(pki.new_key(1024), "leaf", NOW, NOW + dt.timedelta(days=1))
    ca = pki.self_signed(pki.new_key(1024), "ca", NOW, NOW + dt.timedelta(days=1))
    parsed = parse_certificate_file(pki.pem(leaf) + pki.pem(ca))
    assert parsed.count == 2
    assert parsed.leaf.subject.startswith("CN=leaf")
    assert parse_certificate_file(leaf).leaf == parsed.leaf  # DER reads the same as PEM


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (hostile.PEM_GARBAGE, Reason.BAD_CERTIFICATE),
        (b"\x30\x82\x01", Reason.BAD_CERTIFICATE),  # a DER fragment
        (b"", Reason.EMPTY),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", Reason.BAD_CERTIFICATE),
    ],
)
def test_broken_certificate_files_give_a_reason(data: bytes, reason: Reason) -> None:
    with pytest.raises(ParseError) as caught:
        parse_certificate_file(data)
    assert caught.value.reason is reason


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_reads_a_certificate_made_by_the_openssl_cli(tmp_path: Path) -> None:
    """Proves the parser is not only fluent in its own lab's output."""
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "30", "-subj", "/O=symantec.com/OU=scm/CN=sepm-openssl", "-sha256"],
        check=True, capture_output=True,
    )
    spki = subprocess.run(
        ["openssl", "x509", "-in", str(crt), "-noout", "-pubkey"], check=True, capture_output=True
    ).stdout
    der_spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki, check=True,
                              capture_output=True).stdout
    serial = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-serial"], check=True,
                            capture_output=True, text=True).stdout.strip().split("=")[1]
    facts = parse_certificate_file(crt.read_bytes()).leaf
    assert facts.public_key_sha256 == hashlib.sha256(der_spki).hexdigest()
    assert facts.subject == "CN=sepm-openssl,OU=scm,O=symantec.com"
    assert facts.signature_hash == "sha256"
    assert facts.key_bits == 2048
    assert facts.serial == str(int(serial, 16))
    assert 29 * 86400 < facts.not_after - facts.not_before <= 30 * 86400


def test_lab_server_certificate_is_legacy_by_default(lab: estate.Lab) -> None:
    facts = parse_certificate_file(lab.certificate_path("SEPM1").read_bytes()).leaf
    assert (facts.signature_hash, facts.key_bits) == ("sha1", 1024)
