"""Golden expositions: the whole /metrics text after each step of the lab's incidents, compared with a
committed file, so that any change of output is a diff someone reviews.

What the lab makes at random (keys, serials, dates, its temporary folder) is normalised: every
SHA-256 becomes a numbered placeholder (the same hash, the same number, so key identities still
show), times and durations become `<time>` and `<seconds>`. Regenerate after an intended change
with `SEPM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/metrics/test_golden.py` and review the diff.

Each story is kept for two `clients.series` modes: `golden/problems/` (the default: only clients that
need action are named) and `golden/all/` (every client, the exposition before the choice existed).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from sepm_exporter.lab import estate
from sepm_exporter.lab.replay import INCIDENT, KEEP_KEY, Step
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config

GOLDEN = Path(__file__).parent / "golden"
_HASH = re.compile(r"\b[0-9a-f]{64}\b")
_SERIAL = re.compile(r'(serial|checksum|serial_number)="[^"]*"')
_VALUE = re.compile(r"^(\S+?(?:_timestamp_seconds|_duration_seconds)(?:\{.*\})?) \S+$")


def normalise(text: str, lab_dir: Path) -> str:
    """Deterministic text from a run with random keys and dates; see the module docstring."""
    text = text.replace(str(lab_dir), "<lab>")
    text = _SERIAL.sub(lambda m: f'{m.group(1)}="<{m.group(1)}>"', text)
    lines = []
    for line in text.splitlines():
        match = _VALUE.match(line)
        if match and not line.startswith("#"):
            line = f"{match.group(1)} {'<seconds>' if match.group(1).split('{')[0].endswith('_duration_seconds') else '<time>'}"
        lines.append(line)
    # Series order inside a family follows the disk's listing order: sort it, with hashes masked so
    # the order does not depend on the random keys; then number the hashes in that order.
    families: list[list[str]] = []
    for line in lines:
        if line.startswith("# HELP") or not families:
            families.append([])
        families[-1].append(line)
    ordered = []
    for family in families:
        head = [x for x in family if x.startswith("#")]
        body = sorted((x for x in family if not x.startswith("#")), key=lambda x: (_HASH.sub("#", x), x))
        ordered += head + body
    numbers: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return numbers.setdefault(match.group(0), f"<sha256-{len(numbers) + 1}>")

    return "\n".join(_HASH.sub(number, line) for line in ordered) + "\n"


STORIES: dict[str, tuple[Step, ...]] = {"incident": INCIDENT, "keep-key": KEEP_KEY}


@pytest.mark.parametrize("mode", ["problems", "all"])
@pytest.mark.parametrize("story", sorted(STORIES))
def test_exposition_after_each_step_equals_its_golden_file(tmp_path: Path, story: str, mode: str) -> None:
    lab = estate.init(tmp_path / "lab", groups=2, clients=4, heartbeat_seconds=300)
    steps: list[tuple[str, object]] = [("start", None), *STORIES[story]]
    update = os.environ.get("SEPM_UPDATE_GOLDEN") == "1"
    for number, (_title, action) in enumerate(steps):
        if callable(action):
            action(lab)
        exporter = Exporter(dataclasses.replace(load_config(lab.config_path), client_series=mode))
        exporter.full_scan()
        text = normalise(exporter.exposition.decode("utf-8"), lab.directory)
        golden = GOLDEN / mode / f"{story}-{number}.prom"
        if update:
            golden.parent.mkdir(exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert golden.exists(), f"{golden.name} missing: run with SEPM_UPDATE_GOLDEN=1 and review it"
        assert text == golden.read_text(encoding="utf-8"), f"{story} step {number} ({_title}) changed: review and regenerate"


def test_normalise_keeps_hash_identity_and_drops_randomness() -> None:
    a, b = "a" * 64, "b" * 64
    text = (f'# HELP x_info X\n# TYPE x_info gauge\nx_info{{k="{b}",n="2"}} 1.0\nx_info{{k="{a}",n="1"}} 1.0\n'
            f'# HELP y_timestamp_seconds Y\n# TYPE y_timestamp_seconds gauge\ny_timestamp_seconds{{k="{a}"}} 1.7e9\n')
    out = normalise(text, Path("/nowhere"))
    assert 'x_info{k="<sha256-1>",n="1"} 1.0' in out and 'x_info{k="<sha256-2>",n="2"} 1.0' in out
    assert 'y_timestamp_seconds{k="<sha256-1>"} <time>' in out, "the same hash keeps its number"
