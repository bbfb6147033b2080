"""Hostile-input budget: per catalogue case, time and peak memory against a valid file of the same size.

A case is OVER when it takes more than 10x the time or 10x the memory of the valid file of its
size (times under 1 ms count as 1 ms, memory under 1 MiB as 1 MiB: below that it is noise), or
when it is not refused with its catalogue reason. Memory is the process's peak RSS growth (Linux:
VmHWM reset through /proc/self/clear_refs), so libxml2's and OpenSSL's allocations count too.

`--fuzz SECONDS` then runs mutated lab files through the whole scan of a small tree for that long
(the suite runs the same loop with a fixed budget) and reports the slowest scan and any escape.

Run: .venv/bin/python bench/hostile.py [--repeat N] [--fuzz SECONDS]
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sepm_exporter.lab import estate, hostile
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm import layout
from sepm_exporter.sepm.certificate import parse_certificate_file
from sepm_exporter.sepm.reasons import ParseError
from sepm_exporter.sepm.sylink import parse_sylink
from sepm_exporter.settings.config import load_config

RATIO_BUDGET = 10.0
TIME_FLOOR = 1e-3
MEMORY_FLOOR = 1 << 20


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure(parse: Callable[[bytes], Any], data: bytes, repeat: int) -> tuple[float, int, str]:
    """Median time, peak memory growth, and the outcome (a reason, or "ok")."""
    times, peaks, outcome = [], [], "ok"
    for _ in range(repeat):
        by_rss = _reset_peak()
        base = _status("VmRSS") if by_rss else 0
        if not by_rss:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            parse(data)
        except ParseError as exc:
            outcome = exc.reason.value
        times.append(time.perf_counter() - started)
        if by_rss:
            peaks.append(max(0, _status("VmHWM") - base))
        else:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    return statistics.median(times), max(peaks), outcome


def cases(valid_sylink: bytes, valid_pem: bytes) -> list[tuple[str, str, Callable[[bytes], Any], bytes, bytes]]:
    """(name, expected reason, parser, hostile bytes, valid bytes of the same size)."""
    out = []
    for kind, reason in sorted({**hostile.KINDS, **hostile.PARTIAL_KINDS}.items()):
        data = hostile.payload(kind, valid_sylink)
        out.append((kind, reason, parse_sylink, data, hostile.padded_valid(valid_sylink, len(data))))
    for kind, reason in sorted(hostile.CERTIFICATE_KINDS.items()):
        data = hostile.payload(kind, valid_pem)
        out.append((f"server.crt {kind}", reason, parse_certificate_file, data, hostile.padded_pem(valid_pem, len(data))))
    return out


def _partial(parse: Callable[[bytes], Any], data: bytes) -> str:
    """The reason of a file that parses with a problem (partial kinds)."""
    try:
        facts = parse(data)
    except ParseError as exc:
        return exc.reason.value
    problems = getattr(facts, "problems", ())
    return problems[0].reason.value if problems else "ok"


def table(repeat: int) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        lab = estate.init(Path(folder) / "lab", groups=1, clients=1)
        valid_sylink = lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_bytes()
        valid_pem = lab.certificate_path("SEPM1").read_bytes()
    print(f"{'case':<30}{'bytes':>10}{'reason':>17}{'ms':>9}{'valid ms':>10}{'x time':>8}"
          f"{'MiB':>8}{'valid MiB':>10}{'x mem':>7}")
    failed = False
    for name, reason, parse, data, valid in cases(valid_sylink, valid_pem):
        spent, peak, outcome = measure(parse, data, repeat)
        base_time, base_peak, _ = measure(parse, valid, repeat)
        if outcome == "ok":
            outcome = _partial(parse, data)
        x_time = max(spent, TIME_FLOOR) / max(base_time, TIME_FLOOR)
        x_memory = max(peak, MEMORY_FLOOR) / max(base_peak, MEMORY_FLOOR)
        over = x_time > RATIO_BUDGET or x_memory > RATIO_BUDGET or outcome != reason
        failed |= over
        print(f"{name:<30}{len(data):>10}{outcome:>17}{spent * 1e3:>9.2f}{base_time * 1e3:>10.2f}{x_time:>8.1f}"
              f"{peak / 2**20:>8.1f}{base_peak / 2**20:>10.1f}{x_memory:>7.1f}{'  OVER' if over else ''}")
    return not failed


def fuzz(seconds: float) -> bool:
    """Mutated client, group, index2 and certificate files through whole scans for `seconds`."""
    folder = Path(tempfile.mkdtemp(prefix="sepm-fuzz-"))
    logging.disable(logging.WARNING)  # every damaged file logs "file problem": expected, and thousands of them
    try:
        lab = estate.init(folder / "lab", groups=2, clients=3)
        group = lab.state.groups[0].group_id
        targets = [lab.client_path("WS-0001"), lab.sylink_path("SEPM1", group),
                   lab.group_dir("SEPM1", group) / layout.INDEX2_NAME, lab.certificate_path("SEPM2")]
        originals = {path: path.read_bytes() for path in targets}
        exporter = Exporter(load_config(lab.config_path))
        exporter.full_scan()
        rng = random.Random(17)
        scans, slowest, escaped = 0, 0.0, 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in targets:
                path.write_bytes(hostile.mutate(originals[path], rng.getrandbits(32)))
            started = time.perf_counter()
            try:
                exporter.full_scan()
            except Exception as exc:  # the finding this loop looks for
                escaped += 1
                print(f"escaped: {type(exc).__name__}: {exc}")
            slowest = max(slowest, time.perf_counter() - started)
            scans += 1
            for path, data in originals.items():
                path.write_bytes(data)
        print(f"fuzz: {scans} scans of {len(targets)} mutated files in {seconds:.0f} s, slowest scan "
              f"{slowest * 1e3:.1f} ms, escaped {escaped}")
        return escaped == 0 and slowest < len(targets) * 1.0
    finally:
        logging.disable(logging.NOTSET)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fuzz", type=float, default=0.0, help="seconds of whole-scan fuzzing after the table")
    args = parser.parse_args()
    ok = table(args.repeat)
    if args.fuzz > 0:
        ok &= fuzz(args.fuzz)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
