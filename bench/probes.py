"""Probe budget: 100 endpoints, half of them black-holed, finish within the timeout and never delay /metrics.

Half the endpoints are lab TLS listeners serving a lab server's certificate, half are black holes
(listening sockets that never accept, so the handshake never answers). A real `serve` process
probes them every `--interval` seconds; this script scrapes /metrics back to back meanwhile and
compares the scrape latency with the same exporter without probes, and reads the round's wall time
from `sepm_probe_duration_seconds`.
Run: .venv/bin/python bench/probes.py [--endpoints 100] [--timeout 2] [--seconds 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sepm_exporter.lab import estate
from sepm_exporter.lab.tls import BlackHole, TlsListener, server_context


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "sepm_exporter", "serve", "--config", str(config),
                                "--web.listen-address", f"127.0.0.1:{port}", "--log.level=error"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get(f"http://127.0.0.1:{port}/-/ready")
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("exporter did not become ready")


def scrape_latencies(port: int, seconds: float) -> list[float]:
    """Scrape back to back for `seconds`: every one of them overlaps some probing when probes run."""
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        get(f"http://127.0.0.1:{port}/metrics")
        latencies.append(time.perf_counter() - started)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def probe_durations(port: int) -> tuple[float, int, int]:
    """Longest probe of the last round, and how many endpoints were up and down."""
    longest, up, down = 0.0, 0, 0
    for line in get(f"http://127.0.0.1:{port}/metrics").decode().splitlines():
        if line.startswith("sepm_probe_duration_seconds{"):
            longest = max(longest, float(line.rsplit(" ", 1)[1]))
        elif line.startswith("sepm_probe_up{"):
            if line.endswith(" 1.0"):
                up += 1
            else:
                down += 1
    return longest, up, down


def run(config: Path, seconds: float) -> tuple[list[float], subprocess.Popen[bytes], int]:
    port = free_port()
    process = serve(config, port)
    return scrape_latencies(port, seconds), process, port


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        lab = estate.init(Path(folder) / "lab", groups=3, clients=12)
        key, chain = lab.served_pair("SEPM1")
        context = server_context(key, chain)
        listeners = [TlsListener(context).start() for _ in range(args.endpoints // 2)]
        holes = [BlackHole() for _ in range(args.endpoints - len(listeners))]
        endpoints = [f"127.0.0.1:{x.port}" for x in [*listeners, *holes]]
        probed = Path(folder) / "probed.yml"
        probed.write_text(lab.config_path.read_text(encoding="utf-8").replace(
            "    site: tokyo\n", f"    site: tokyo\n    probes: {json.dumps(endpoints)}\n", 1)
            + f"probe:\n  interval: {args.interval}\n  timeout: {args.timeout}\n", encoding="utf-8")
        try:
            baseline, process, _ = run(lab.config_path, args.seconds)
            process.terminate()
            process.wait()
            with_probes, process, port = run(probed, args.seconds)
            longest, up, down = probe_durations(port)
            process.terminate()
            process.wait()
        finally:
            for listener in listeners:
                listener.close()
            for hole in holes:
                hole.close()
    figures = {
        "endpoints": args.endpoints, "black_holed": len(holes), "timeout_s": args.timeout,
        "longest_probe_s": round(longest, 3), "up": up, "down": down,
        "scrapes_without": len(baseline), "scrapes_with": len(with_probes),
        "p50_ms_without": round(statistics.median(baseline) * 1e3, 2),
        "p50_ms_with": round(statistics.median(with_probes) * 1e3, 2),
        "p99_ms_without": round(percentile(baseline, 0.99) * 1e3, 2),
        "p99_ms_with": round(percentile(with_probes, 0.99) * 1e3, 2),
        "max_ms_without": round(max(baseline) * 1e3, 2),
        "max_ms_with": round(max(with_probes) * 1e3, 2),
        "cpus": os.cpu_count(),
    }
    within = longest <= args.timeout * 1.25 and up == len(listeners) and down == len(holes)
    undelayed = figures["p99_ms_with"] < 100 and figures["max_ms_with"] < args.timeout * 1e3 / 2
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:<18}{value}")
        print("within the timeout" if within else "OVER the timeout", "/",
              "scrapes not delayed" if undelayed else "SCRAPES DELAYED")
    return 0 if within and undelayed else 1


if __name__ == "__main__":
    raise SystemExit(main())
