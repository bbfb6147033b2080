"""Soak: 10,000 change events over minutes while a second process scrapes steadily.

    .venv/bin/python bench/soak.py                       # 10,000 events over 180 s, 2,000 clients
    .venv/bin/python bench/soak.py --duration 60 --clients 1000    # what the test suite runs

Passes when, after a warm-up (the first fifth of the run), the exporter's RSS stays within 10% of
its lowest value, its open file descriptors do not grow, no scrape takes longer than the bound,
and at the end /metrics equals a fresh scan of the same tree. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import EVERY_CLIENT, fds, get, rss_mb, serve  # bench/run.py

from sepm_exporter.lab import estate, hostile

SCRAPE_BOUND_SECONDS = 0.5  # a scrape of a 1,000-client exporter takes milliseconds; this allows 100x
RSS_SPREAD = 0.10

SCRAPER = """
import json, sys, time, urllib.request
url, deadline, limit = sys.argv[1], time.monotonic() + float(sys.argv[2]), int(sys.argv[3])
took = []
failed = 0
while time.monotonic() < deadline and len(took) < limit:
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except OSError:
        failed += 1
        continue
    took.append(time.perf_counter() - started)
    time.sleep(0.05)
print(json.dumps({"took": took, "failed": failed}))
"""


def facts(text: bytes) -> set[bytes]:
    return {line for line in text.splitlines()
            if line.startswith(b"sepm_") and not line.startswith(b"sepm_exporter_")}


def soak(clients: int, events: int, duration: float, workdir: Path) -> dict[str, float | int | bool]:
    lab = estate.init(workdir / "lab", groups=20, clients=clients)
    process, url = serve(lab, workdir)
    metrics = f"{url}/metrics"
    scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, metrics, str(duration), "100000"],
                               stdout=subprocess.PIPE)
    names = sorted(lab.state.clients)
    rss: list[float] = []
    descriptors: list[int] = []
    try:
        started = time.monotonic()
        done = 0
        next_sample = started
        while done < events:
            due = started + duration * (done + 1) / events
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            lab.write_variant(hostile.VARIANTS[(done // len(names)) % len(hostile.VARIANTS)],
                              lab.client_path(names[done % len(names)]))
            done += 1
            if time.monotonic() >= next_sample:
                rss.append(rss_mb(process.pid))
                descriptors.append(fds(process.pid))
                next_sample += 1.0
        fresh = subprocess.run([sys.executable, "-m", "sepm_exporter", "metrics", "--config", str(lab.config_path),
                                *EVERY_CLIENT],
                               capture_output=True, check=True).stdout
        settle = time.monotonic() + 30  # the last events are debounced and applied: converge, or fail
        while True:
            consistent = facts(get(metrics)) == facts(fresh)
            if consistent or time.monotonic() > settle:
                break
            time.sleep(0.5)
        out, _ = scraper.communicate(timeout=60)  # the load ends before the exporter does
    finally:
        if scraper.poll() is None:
            scraper.kill()
        process.terminate()
        process.wait(timeout=60)
    load = json.loads(out)
    took, failed = load["took"], load["failed"]
    warm = rss[len(rss) // 5:]
    warm_fds = descriptors[len(descriptors) // 5:]
    spread = (max(warm) - min(warm)) / min(warm)
    return {
        "events": events, "seconds": round(time.monotonic() - started, 1), "scrapes": len(took), "failed_scrapes": failed,
        "scrape_max_s": round(max(took), 4), "scrape_median_s": round(sorted(took)[len(took) // 2], 4),
        "rss_min_mb": round(min(warm), 1), "rss_max_mb": round(max(warm), 1), "rss_spread": round(spread, 4),
        "fds_min": min(warm_fds), "fds_max": max(warm_fds), "consistent_with_fresh_scan": consistent,
        "ok": spread <= RSS_SPREAD and max(warm_fds) <= min(warm_fds) + 2 and max(took) <= SCRAPE_BOUND_SECONDS
        and consistent and failed == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds over which the events are spread")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sepm-soak-") as folder:
        result = soak(args.clients, args.events, args.duration, Path(folder))
    for key, value in result.items():
        print(f"{key:28} {value}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
