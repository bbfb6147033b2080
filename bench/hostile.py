"""Hostile-input budget: every catalogue case is refused in under 1 s and 100 MB.

Prints, per case, the median wall time and peak traced memory of parse_sylink, next to the same
figures for a valid lab SyLink.xml measured in the same run (the baseline).
Run: .venv/bin/python bench/hostile.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sepm_exporter.lab import estate, hostile
from sepm_exporter.sepm.reasons import ParseError
from sepm_exporter.sepm.sylink import parse_sylink

TIME_BUDGET = 1.0
MEMORY_BUDGET = 100 * 1024 * 1024


def measure(data: bytes, repeat: int) -> tuple[float, int, str]:
    times, peaks, outcome = [], [], "ok"
    for _ in range(repeat):
        tracemalloc.start()
        started = time.perf_counter()
        try:
            parse_sylink(data)
        except ParseError as exc:
            outcome = exc.reason.value
        times.append(time.perf_counter() - started)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return statistics.median(times), max(peaks), outcome


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        lab = estate.init(Path(folder) / "lab", groups=1, clients=1)
        valid = lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_bytes()
    base_time, base_peak, _ = measure(valid, args.repeat)
    print(f"{'case':<26}{'reason':<18}{'median ms':>10}{'x valid':>9}{'peak MiB':>10}")
    print(f"{'valid SyLink.xml':<26}{'-':<18}{base_time * 1e3:>10.2f}{1:>9.1f}{base_peak / 2**20:>10.2f}")
    failed = False
    for kind in sorted(hostile.KINDS):
        spent, peak, reason = measure(hostile.payload(kind, valid), args.repeat)
        over = spent > TIME_BUDGET or peak > MEMORY_BUDGET or reason != hostile.KINDS[kind]
        failed |= over
        print(f"{kind:<26}{reason:<18}{spent * 1e3:>10.2f}{spent / base_time:>9.1f}{peak / 2**20:>10.2f}"
              f"{'  OVER BUDGET' if over else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
