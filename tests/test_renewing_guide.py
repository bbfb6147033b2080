"""docs/renewing-safely.md replayed: every command runs on a fresh lab, and every line shown is printed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).parent.parent / "docs" / "renewing-safely.md"


def blocks() -> list[list[str]]:
    return [b.splitlines() for b in re.findall(r"```console\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)]


def steps(lines: list[str]) -> list[tuple[str, list[str], int]]:
    """(command, expected lines, exit code) from one console block."""
    out: list[tuple[str, list[str], int]] = []
    for line in lines:
        if line.startswith("$ "):
            out.append((line[2:], [], 0))
        elif (match := re.fullmatch(r"\[exit (\d+)\]", line)) is not None:
            command, expected, _ = out[-1]
            out[-1] = (command, expected, int(match.group(1)))
        else:
            out[-1][1].append(line)
    return out


def test_the_guide_replays(tmp_path: Path) -> None:
    lab = str(tmp_path / "lab")
    ran = 0
    for block in blocks():
        for command, expected, code in steps(block):
            argv = [a.replace("LAB", lab) for a in shlex.split(command)]
            assert argv[0] == "sepm-exporter"
            result = subprocess.run([sys.executable, "-m", "sepm_exporter", *argv[1:]], capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == code, f"{command}: exit {result.returncode}\n{result.stdout}{result.stderr}"
            printed = result.stdout.splitlines()
            position = 0
            for want in (w.replace("LAB", lab) for w in expected if w != "..."):
                assert want in printed[position:], f"{command}: missing, in order: {want!r}\n{result.stdout}"
                position = printed.index(want, position) + 1
            ran += 1
    assert ran >= 15


def test_readme_and_runbook_link_the_guide() -> None:
    top = GUIDE.parent.parent
    assert "docs/renewing-safely.md" in (top / "README.md").read_text(encoding="utf-8")
    assert "../renewing-safely.md" in (top / "docs" / "runbooks" / "SEPMServerKeyChanged.md").read_text(encoding="utf-8")
