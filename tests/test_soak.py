"""The soak, short enough for CI: 10,000 change events in a minute under a steady scrape load.

The full soak (three minutes) is `bench/soak.py` with its defaults; this runs the same code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.soak]
SOAK = Path(__file__).parent.parent / "bench" / "soak.py"


def test_ten_thousand_events_leave_memory_descriptors_and_scrapes_flat() -> None:
    result = subprocess.run([sys.executable, str(SOAK), "--events", "10000", "--duration", "60", "--clients", "1000"],
                            capture_output=True, text=True, timeout=170)
    report = dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip())
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert report["events"] == "10000" and report["consistent_with_fresh_scan"] == "True"
    assert int(report["scrapes"]) > 100, "the scrape load really ran"
