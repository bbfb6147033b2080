"""The keystore reader: every chain without a password, and a typed error for anything else."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from sepm_exporter.lab import estate, hostile, jks, pki
from sepm_exporter.sepm.certificate import parse_der
from sepm_exporter.sepm.keystore import MAX_ENTRIES, parse_keystore_file, read_jks, read_keystore
from sepm_exporter.sepm.reasons import ParseError, Reason

KEYTOOL = shutil.which("keytool")
OPENSSL = shutil.which("openssl")


def _pair(host: str = "SEPM1") -> tuple[rsa.RSAPrivateKey, bytes]:
    key = pki.weak_key(512, seed=sum(host.encode()))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return key, pki.self_signed(key, host, now, now + dt.timedelta(days=30))


def test_the_lab_keystore_is_read_without_its_password(lab: estate.Lab) -> None:
    data = lab.keystore_path("SEPM1").read_bytes()
    found = parse_keystore_file(data)
    on_disk = parse_der(lab.certificate_der("SEPM1"))
    assert found.leaf == on_disk and found.count == 1
    assert lab.keystore_password.encode("utf-16-be") not in data  # the file never holds it, only a hash


def test_a_keystore_with_another_password_is_read_all_the_same(lab: estate.Lab) -> None:
    before = parse_keystore_file(lab.keystore_path("SEPM1").read_bytes())
    lab.write_keystore("SEPM1", password="s0mething-nobody-configured")
    assert parse_keystore_file(lab.keystore_path("SEPM1").read_bytes()) == before


def test_the_lab_writes_what_the_lab_can_read_back_with_the_password() -> None:
    key, der = _pair()
    data = jks.write_jks("scm", key, [der], "pw")
    recovered, chain = jks.private_key_of(data, "pw")
    assert recovered.private_numbers() == key.private_numbers() and chain == [der]
    with pytest.raises(ValueError, match="wrong keystore password"):
        jks.private_key_of(data, "not-it")


def test_chains_and_trusted_entries_leaf_is_the_private_key_entry() -> None:
    key, leaf = _pair("leaf")
    _, ca = _pair("ca")
    _, other = _pair("other")
    data = jks.write_jks("scm", key, [leaf, ca], "pw", trusted=[("root", other)])
    entries = read_jks(data)
    assert [(e.alias, e.private_key, len(e.chain)) for e in entries] == [("scm", True, 2), ("root", False, 1)]
    found = parse_keystore_file(data)
    assert "CN=leaf" in found.leaf.subject
    assert found.count == 3


def test_every_prefix_is_a_typed_error_never_a_crash() -> None:
    key, der = _pair()
    data = jks.write_jks("scm", key, [der], "pw")
    for cut in range(len(data)):  # a keystore caught mid-write, at every length
        with pytest.raises(ParseError) as caught:
            read_keystore(data[:cut])
        assert caught.value.reason in (Reason.BAD_KEYSTORE, Reason.EMPTY)


def test_caps_refuse_absurd_counts_and_lengths_before_reading() -> None:
    key, der = _pair()
    data = jks.write_jks("scm", key, [der], "pw")
    with pytest.raises(ParseError, match="entry cap"):
        read_jks(data[:8] + struct.pack(">I", MAX_ENTRIES + 1) + data[12:])
    alias_at = 16
    with pytest.raises(ParseError, match="string length"):
        read_jks(data[:alias_at] + b"\xff\xff" + data[alias_at + 2:])
    key_length_at = alias_at + 2 + 3 + 8
    with pytest.raises(ParseError, match="protected key length"):
        read_jks(data[:key_length_at] + b"\x7f\xff\xff\xff" + data[key_length_at + 4:])


def test_noise_is_a_bad_keystore() -> None:
    rng = random.Random(16)
    for _ in range(200):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300)))
        with pytest.raises(ParseError):
            read_keystore(blob)
        with pytest.raises(ParseError):
            read_keystore(b"\xfe\xed\xfe\xed" + blob)
        with pytest.raises(ParseError):
            read_keystore(b"\x30" + blob)


def test_pkcs12_certificates_in_the_clear_are_read_without_a_password() -> None:
    key, der = _pair()
    cert = x509.load_der_x509_certificate(der)
    data = pkcs12.serialize_key_and_certificates(b"scm", key, cert, None, serialization.NoEncryption())
    found = parse_keystore_file(data)
    assert found.leaf == parse_der(der)


def test_pkcs12_with_encrypted_certificates_is_a_clear_file_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_keystore_file(hostile.encrypted_pkcs12())
    assert caught.value.reason is Reason.KEYSTORE_ENCRYPTED
    assert "lab-secret" not in str(caught.value)


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_pkcs12_with_clear_certificates(tmp_path: Path) -> None:
    key, der = _pair()
    (tmp_path / "cert.pem").write_bytes(pki.pem(der))
    (tmp_path / "key.pem").write_bytes(pki.key_pem(key))
    subprocess.run([str(OPENSSL), "pkcs12", "-export", "-in", str(tmp_path / "cert.pem"), "-inkey", str(tmp_path / "key.pem"),
                    "-certpbe", "NONE", "-passout", "pass:secret", "-out", str(tmp_path / "k.p12")],
                   check=True, capture_output=True)
    assert parse_keystore_file((tmp_path / "k.p12").read_bytes()).leaf == parse_der(der)


@pytest.mark.skipif(KEYTOOL is None, reason="keytool (a JDK) not installed")
def test_keytool_keystores(tmp_path: Path) -> None:
    """The real thing: keytool writes JKS (read), accepts the lab's JKS (integrity and key), and writes
    PKCS#12 with encrypted certificates (a typed error)."""
    jks_path = tmp_path / "keytool.jks"
    subprocess.run([str(KEYTOOL), "-genkeypair", "-keyalg", "RSA", "-keysize", "2048", "-alias", "scm", "-storetype", "JKS",
                    "-keystore", str(jks_path), "-storepass", "secret1", "-keypass", "secret1",
                    "-dname", "CN=SEPM1, OU=scm, O=symantec.com", "-validity", "30"], check=True, capture_output=True)
    found = parse_keystore_file(jks_path.read_bytes())
    assert found.leaf.subject == "CN=SEPM1,OU=scm,O=symantec.com" and found.leaf.key_bits == 2048

    key, der = _pair()
    lab_path = tmp_path / "lab.jks"
    lab_path.write_bytes(jks.write_jks("scm", key, [der], "lab-pw"))
    p12 = tmp_path / "lab.p12"
    subprocess.run([str(KEYTOOL), "-importkeystore", "-srckeystore", str(lab_path), "-srcstoretype", "JKS",
                    "-srcstorepass", "lab-pw", "-destkeystore", str(p12), "-deststoretype", "PKCS12",
                    "-deststorepass", "lab-pw", "-noprompt"], check=True, capture_output=True)
    with pytest.raises(ParseError) as caught:
        parse_keystore_file(p12.read_bytes())
    assert caught.value.reason is Reason.KEYSTORE_ENCRYPTED
