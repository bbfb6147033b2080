"""scripts/bundle: the offline bundle resolves for Windows CPython 3.11 and 3.12 with no index, and the
bundle for this machine installs into a bare venv whose `check` reads a SEPM tree the lab did not write.

One bundle of each kind per test session (both share one worker: xdist group "bundle"). pip runs
with the machine's configuration ignored (no config file, no PIP_* variables) wherever the point is
that nothing but the bundle is used; only scripts/bundle itself reaches the index, as configured.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import find
from sepm_exporter import __version__

ROOT = Path(__file__).parent.parent
LOCK = ROOT / "requirements.lock"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("bundle")]


def _pip_env(tmp: Path, isolated: bool) -> dict[str, str]:
    """The environment for pip: its cache in `tmp` always; with `isolated`, no config and no PIP_* at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    if isolated:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_CACHE_DIR"] = str(tmp / "pip-cache")
    return env


def _bundle(out: Path, *options: str) -> Path:
    env = _pip_env(out.parent, isolated=False)
    env["PYTHON"] = sys.executable
    result = subprocess.run(["bash", str(ROOT / "scripts" / "bundle"), str(out), *options], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def windows_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bundle(tmp_path_factory.mktemp("windows") / "bundle", "--platform", "win_amd64")


@pytest.fixture(scope="session")
def native_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bundle(tmp_path_factory.mktemp("native") / "bundle")


def _locked() -> dict[str, str]:
    """name -> pinned version, from requirements.lock."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, _, version = line.split()[0].partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


@pytest.mark.parametrize("python", ["3.11", "3.12"])
@pytest.mark.parametrize("hashes", [False, True], ids=["by-name", "as-the-install-script"])
def test_windows_bundle_resolves_with_no_index(windows_bundle: Path, python: str, hashes: bool, tmp_path: Path) -> None:
    """What `pip install --no-index` would install on Windows from the bundle alone: sepm-exporter and
    exactly the lock's pins, every file from the bundle folder."""
    what = ["--require-hashes", "--requirement", str(windows_bundle / "requirements.txt")] if hashes else ["sepm-exporter"]
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--target", str(tmp_path / "target"),
         "--no-index", "--find-links", str(windows_bundle), "--python-version", python, "--platform", "win_amd64",
         "--implementation", "cp", "--only-binary=:all:", "--report", str(report), *what],
        env=_pip_env(tmp_path, isolated=True), capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    chosen = {item["metadata"]["name"].lower().replace("_", "-"): item for item in json.loads(report.read_text())["install"]}
    assert {name: item["metadata"]["version"] for name, item in chosen.items()} == {**_locked(), "sepm-exporter": __version__}
    files = [item["download_info"]["url"].rsplit("/", 1)[1] for item in chosen.values()]
    assert all((windows_bundle / name).is_file() for name in files), files
    assert all(name.endswith(("-win_amd64.whl", "-none-any.whl")) for name in files), files


def test_windows_bundle_holds_what_its_install_script_names(windows_bundle: Path) -> None:
    script = (windows_bundle / "Install-SepmExporter.ps1").read_text(encoding="utf-8")
    for name in ("requirements.txt", "config.yml", "web-config.yml", "sepm-exporter-service.xml"):
        assert f"'{name}'" in script and (windows_bundle / name).is_file(), name
    assert "--no-index" in script and "--require-hashes" in script
    wheels = sorted(p.name for p in windows_bundle.glob("*.whl"))
    assert not [w for w in wheels if "linux" in w or "macosx" in w], wheels
    for python in ("cp311", "cp312"):  # each version finds its own build of the compiled dependencies
        assert any(f"lxml-{_locked()['lxml']}-{python}-{python}-win_amd64.whl" == w for w in wheels), (python, wheels)
    assert (windows_bundle / "LICENSE").read_text(encoding="utf-8") == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert (windows_bundle / "PLATFORM.txt").read_text(encoding="utf-8") == (
        f"sepm-exporter {__version__}\nplatform: win_amd64\nCPython: 3.11 3.12\n")


def test_bundle_refuses_a_folder_with_files_in_it(tmp_path: Path) -> None:
    (tmp_path / "old.whl").write_bytes(b"")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "bundle"), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not empty" in result.stderr
    result = subprocess.run(["bash", str(ROOT / "scripts" / "bundle"), str(tmp_path / "new"), "--plaform", "x"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown option --plaform" in result.stderr and not (tmp_path / "new").exists()


# --- a SEPM tree written here with openssl, shaped unlike the lab's: another root, a Japanese folder
# name, single-line base64, attributes in another order, CRLF, no ServerList site --------------------

GROUP = "0123456789ABCDEF0123456789ABCDEF"


def _openssl_certificate(folder: Path, name: str) -> bytes:
    """A self-signed certificate by openssl (not the lab's PKI); its DER bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "400", "-subj", f"/CN={name}",
                    "-keyout", str(folder / "server.key"), "-out", str(folder / "server.crt")], check=True, capture_output=True)
    return subprocess.run(["openssl", "x509", "-in", str(folder / "server.crt"), "-outform", "DER"],
                          check=True, capture_output=True).stdout


def _public_key_sha256(certificate: Path) -> str:
    key = subprocess.run(["openssl", "x509", "-in", str(certificate), "-pubkey", "-noout"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=key, check=True, capture_output=True).stdout
    return subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der, check=True, capture_output=True).stdout.split()[0].decode()


def _sylink(der: bytes) -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?>\r\n"
            "<ServerSettings NameSpace='rpc' DomainId='D0D0D0D0D0D0D0D0D0D0D0D0D0D0D0D0'><CommConf>"
            "<AgentCommunicationSetting PullHeartbeatSeconds='600' CommunicationMode='PULL'/>"
            "<ServerList><ServerPriorityBlock Name='Priority1'><Server HttpPort='8014' Address='sepm-a.corp.test'/>"
            "</ServerPriorityBlock></ServerList>"
            f"<ServerCertList><Certificate Name='sepm-a'>{base64.b64encode(der).decode()}</Certificate></ServerCertList>"
            "<RegisterClient PreferredGroup='Tokyo\\Servers'/></CommConf></ServerSettings>\r\n").encode()


def _foreign_tree(base: Path) -> tuple[Path, Path]:
    """(config, server.crt): one server, one group, a client that holds the current key and one that holds a retired one."""
    root = base / "E ドライブ" / "SEPM 本番"
    ssl = root / "apache" / "conf" / "ssl"
    current = _openssl_certificate(ssl, "sepm-a.corp.test")
    retired = _openssl_certificate(base / "retired", "sepm-a.corp.test")
    group = root / "data" / "outbox" / "agent" / GROUP
    group.mkdir(parents=True)
    (group / "SyLink.xml").write_bytes(_sylink(current))
    for client, der in (("クライアント-01", current), ("LAPTOP-OLD", retired)):
        (base / "copies" / client).mkdir(parents=True)
        (base / "copies" / client / "SyLink.xml").write_bytes(_sylink(der))
    config = base / "config.yml"
    config.write_text(f"servers:\n  - name: SEPM-A\n    root: '{root}'\nclients:\n  - collection: '{base / 'copies'}'\n",
                      encoding="utf-8")
    return config, ssl / "server.crt"


def test_native_bundle_installs_offline_into_a_bare_venv_that_checks_a_foreign_tree(native_bundle: Path, tmp_path: Path) -> None:
    """The wheel, not the checkout: a venv with nothing but the bundle installed, run from a folder
    outside the source tree, judges a tree the project's lab did not write."""
    venv = tmp_path / "venv"
    python, exe = venv / "bin" / "python", venv / "bin" / "sepm-exporter"
    env = _pip_env(tmp_path, isolated=True)
    (commands,) = re.findall(r"^```sh\n(.*?)^```", (native_bundle / "README.md").read_text(encoding="utf-8"), re.M | re.S)
    commands = (commands.replace("python3 ", f"{shlex.quote(sys.executable)} ").replace("/opt/sepm-exporter", shlex.quote(str(venv)))
                .replace("BUNDLE", shlex.quote(str(native_bundle))))  # the bundle README's own commands, paths moved
    installed = subprocess.run(["bash", "-euc", commands], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=work)

    where = run(str(python), "-c", "import sys, sepm_exporter; print(sepm_exporter.__file__); print(*sys.path, sep='\\n')").stdout
    module, *path = where.splitlines()
    assert Path(module).is_relative_to(venv), module
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)], path  # no checkout on sys.path
    editable = run(str(python), "-m", "pip", "show", "-f", "sepm-exporter").stdout
    assert "__editable__" not in editable and f"Version: {__version__}" in editable
    assert run(str(exe), "--version").stdout.strip() == f"sepm-exporter {__version__}"
    served = run(str(python), "-c", "from sepm_exporter.serving import runbooks; print(runbooks.folder()); "
                 "print(runbooks.page('/runbooks/SEPMServerKeyChanged')[0])").stdout.split()
    assert Path(served[0]).is_relative_to(venv) and served[1] == "200", served  # the runbooks come with the wheel

    config, certificate = _foreign_tree(tmp_path / "tree")
    check = run(str(exe), "check", "--config", str(config), "--format", "json")
    assert check.returncode == 2, check.stderr  # a client that cannot connect is critical
    report = json.loads(check.stdout)
    assert report["status"] == "critical"
    (untrusted,) = [f for f in report["findings"] if f["alert"] == "SEPMClientServerKeyUntrusted"]
    assert untrusted["clients"] == ["LAPTOP-OLD"], untrusted
    metrics = run(str(exe), "metrics", "--config", str(config), "--clients.series", "all")  # the healthy client's lines too
    assert metrics.returncode == 0, metrics.stderr
    exposition = metrics.stdout.encode()
    ((labels, _),) = find(exposition, "sepm_certificate_info", server="SEPM-A")
    assert labels["public_key_sha256"] == _public_key_sha256(certificate)  # openssl and the wheel agree on the key
    assert find(exposition, "sepm_client_sylink_current", client="クライアント-01")[0][1] == 1.0
    assert find(exposition, "sepm_exporter_build_info") == [({"version": __version__}, 1.0)]


def test_the_wheel_ships_the_license_and_the_one_version(windows_bundle: Path) -> None:
    import zipfile

    (wheel,) = windows_bundle.glob("sepm_exporter-*.whl")
    assert wheel.name == f"sepm_exporter-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        info = f"sepm_exporter-{__version__}.dist-info"
        assert archive.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        metadata = archive.read(f"{info}/METADATA").decode("utf-8")
        assert f"\nVersion: {__version__}\n" in metadata and "\nLicense-Expression: Apache-2.0\n" in metadata
        assert not [n for n in archive.namelist() if n.startswith(("tests/", "bench/", "scripts/"))]
        shipped = {n.rsplit("/", 1)[1] for n in archive.namelist() if n.startswith("sepm_exporter/serving/runbooks/")}
        assert shipped == {p.name for p in (ROOT / "docs" / "runbooks").glob("*.md")}, "the exporter serves them from the wheel"


def test_the_same_sources_build_the_same_wheel(windows_bundle: Path, native_bundle: Path) -> None:
    """Two builds (one per bundle) give one wheel, byte for byte: its dates come from the commit, not the clock."""
    (first,) = windows_bundle.glob("sepm_exporter-*.whl")
    (second,) = native_bundle.glob("sepm_exporter-*.whl")
    assert first.read_bytes() == second.read_bytes()
