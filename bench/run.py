"""The performance benchmark: every figure next to a baseline measured in the same run, on the same tree.

    .venv/bin/python bench/run.py --quick      # 10,000 clients, 2 x 100 groups: under a minute
    .venv/bin/python bench/run.py              # 100,000 clients, 2 x 1,000 groups: a few minutes

It builds the tree with the SEPM lab, then measures (medians of several runs):

- cold scan: a new exporter reads, parses and indexes everything (the series are rendered on the
  first scrape, timed separately), against a bare loop that reads and SHA-256s the same files;
- reconciliation with nothing changed, against a bare scandir/stat walk of the same tree;
- scrape wall time of /metrics from `serve`, identity and gzip, against node_exporter's textfile
  collector serving the very same series from a .prom file;
- change latency: a client file rewritten until /metrics shows it, at full size and at 100 clients;
- scrapes during polls: `serve` in poll mode with a 1 s poll interval, scraped back to back for a
  minute (20 s with --quick): the p99 scrape against the idle scrape's p50 (events mode, no scans);
- memory: the serving process's RSS after the first scrapes and across 10,000 change events, and
  its open file descriptors.

Prints a table and writes the same as JSON (`--json`, default bench/results/<size>.json). Exits 1
when a goal of the performance issue is missed, so a regression is loud.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sepm_exporter.lab import estate, hostile
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config

SIZES = {"quick": (10_000, 100), "full": (100_000, 1_000)}
GOALS = {"scrape_identity": 10.0, "scrape_gzip": 10.0, "cold": 2.0, "reconcile": 1.5, "latency_p99": 1.0,
         "rss_mb": 300.0, "rss_growth": 0.10, "poll_scrape_ratio": 3.0, "poll_scrape_floor": 0.100}


@dataclass
class Row:
    """One line of the table: our figure, the baseline's, and how they compare with the goal."""

    name: str
    ours: float
    baseline: float | None
    unit: str
    goal: str
    met: bool


def median_of(repeat: int, action: Callable[[], float]) -> float:
    return statistics.median(action() for _ in range(repeat))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def watched_files(lab: estate.Lab) -> list[str]:
    """Every file the exporter reads: the floor loops touch exactly these."""
    files = [str(lab.certificate_path(s.name)) for s in lab.state.servers]
    for server in lab.state.servers:
        outbox = lab.server_root(server.name).joinpath("data", "outbox", "agent")
        files += [os.path.join(entry.path, "SyLink.xml") for entry in os.scandir(outbox)]
        files += [os.path.join(entry.path, "index2.xml") for entry in os.scandir(outbox)
                  if os.path.exists(os.path.join(entry.path, "index2.xml"))]
    files += [os.path.join(entry.path, "SyLink.xml") for entry in os.scandir(lab.clients_root)]
    return files


def floor_read(lab: estate.Lab) -> float:
    """Read and hash every watched file, listing the folders as a scan must."""
    def run() -> None:
        for path in watched_files(lab):
            with open(path, "rb") as handle:
                hashlib.sha256(handle.read()).digest()
    return timed(run)


def floor_stat(lab: estate.Lab) -> float:
    def run() -> None:
        for path in watched_files(lab):
            os.stat(path)
    return timed(run)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, gzip: bool = False) -> bytes:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    with urllib.request.urlopen(request, timeout=300) as response:
        return bytes(response.read())


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def node_exporter_scrapes(exposition: bytes, repeat: int, workdir: Path) -> tuple[float, float] | None:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        return None
    folder = workdir / "textfile"
    folder.mkdir()
    (folder / "sepm.prom").write_bytes(exposition)
    port = free_port()
    node = subprocess.Popen([binary, "--collector.disable-defaults", "--collector.textfile",
                             f"--collector.textfile.directory={folder}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_http(url, 30)
        get(url)
        return (median_of(repeat, lambda: timed(lambda: get(url))),
                median_of(repeat, lambda: timed(lambda: get(url, gzip=True))))
    finally:
        node.terminate()
        node.wait(timeout=30)


def change_latency(lab: estate.Lab, url: str, samples: int, seed: int = 5) -> list[float]:
    """Rewrite a client's file, then scrape until its new hash is served."""
    import random

    rng = random.Random(seed)
    names = sorted(lab.state.clients)
    variants = list(hostile.VARIANTS)
    found: list[float] = []
    for i in range(samples):
        name = rng.choice(names)
        path = lab.client_path(name)
        lab.write_variant(variants[i % len(variants)], path)
        wanted = hashlib.sha256(path.read_bytes()).hexdigest().encode()
        prefix = f'sepm_client_sylink_info{{client="{name}",'.encode()
        started = time.perf_counter()
        while wanted not in client_line(get(url), prefix):
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"change to {name} not visible after 30 s")
        found.append(time.perf_counter() - started)
        time.sleep(0.3)
    return found


def client_line(body: bytes, prefix: bytes) -> bytes:
    """The client's own info line: another client may hold the very same bytes (and hash)."""
    start = body.find(prefix)
    return body[start:body.find(b"\n", start)] if start >= 0 else b""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# Every client in the exposition (clients.series all, no ceiling): the heaviest exposition and the
# renderer's every client path, as before the setting existed. bench/series.py measures the modes.
EVERY_CLIENT = ("--clients.series=all", f"--clients.series-limit={10**9}")


def serve(lab: estate.Lab, workdir: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--log.level=warn", *EVERY_CLIENT, *(flags or ("--watch.mode=events",))],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "serve.log", "wb"),  # noqa: SIM115 - lives with the process
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            if get(f"{url}/-/ready"):
                break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("serve did not become ready")
        time.sleep(0.2)
    return process, url


def rewrite_burst(lab: estate.Lab, names: list[str], kind: str) -> None:
    for name in names:
        lab.write_variant(kind, lab.client_path(name))


def scans(lab: estate.Lab, repeat: int) -> tuple[list[Row], bytes]:
    """Cold scan and reconciliation, in-process, each between runs of its floor loop."""
    config = dataclasses.replace(load_config(lab.config_path), client_series="all", client_series_limit=10**9)
    floor_read(lab)  # warm the page cache for both sides
    cold_floor = median_of(repeat, lambda: floor_read(lab))

    renders: list[float] = []

    def cold() -> float:
        if config.state_file is not None and config.state_file.exists():
            config.state_file.unlink()
        exporter = Exporter(config)
        total = timed(exporter.full_scan)
        renders.append(exporter.publisher.seconds)
        return total - exporter.publisher.seconds  # read, parse, judge: the rendering is its own row

    cold_ours = median_of(repeat, cold)
    rows = [Row("cold scan", cold_ours, cold_floor, "s", f"<= {GOALS['cold']}x floor", cold_ours <= GOALS["cold"] * cold_floor),
            Row("first rendering and compression (writer, before ready)", statistics.median(renders), None, "s", "", True)]
    warm = Exporter(config)
    warm.full_scan()
    stat_floor = median_of(repeat, lambda: floor_stat(lab))
    reconcile = median_of(repeat, lambda: timed(warm.full_scan))
    rows.append(Row("reconciliation, nothing changed", reconcile, stat_floor, "s", f"<= {GOALS['reconcile']}x stat walk",
                    reconcile <= GOALS["reconcile"] * stat_floor))
    return rows, warm.exposition


def run(size: str, repeat: int, workdir: Path) -> tuple[list[Row], dict[str, object]]:
    clients, groups = SIZES[size]
    rows: list[Row] = []
    facts: dict[str, object] = {}
    started = time.perf_counter()
    lab = estate.init(workdir / "lab", groups=groups, clients=clients, key_bits=2048, signature_hash="sha256")
    files = watched_files(lab)
    sizes = [os.path.getsize(lab.client_path(n)) for n in list(lab.state.clients)[:200]]
    facts.update(clients=clients, groups_per_server=groups, files=len(files),
                 client_file_bytes=round(statistics.mean(sizes)), build_seconds=round(time.perf_counter() - started, 1))
    print(f"tree: {clients} clients, 2 x {groups} groups, {len(files)} files, "
          f"~{facts['client_file_bytes']} B per client file, built in {facts['build_seconds']} s", flush=True)
    scan_rows, exposition = scans(lab, repeat)
    rows += scan_rows
    facts["exposition_bytes"] = len(exposition)
    facts["series"] = sum(1 for line in exposition.splitlines() if line and not line.startswith(b"#"))

    process, url = serve(lab, workdir)
    try:
        metrics = f"{url}/metrics"
        first = timed(lambda: get(metrics, gzip=True))
        rows.append(Row("first scrape after start", first, None, "s", "", True))
        get(metrics)
        idle = [timed(lambda: get(metrics)) for _ in range(20)]
        rss_first = rss_mb(process.pid)
        ours_plain = median_of(repeat, lambda: timed(lambda: get(metrics)))
        ours_gzip = median_of(repeat, lambda: timed(lambda: get(metrics, gzip=True)))
        node = node_exporter_scrapes(exposition, repeat, workdir)
        if node is not None:
            rows.append(Row("scrape /metrics (identity)", ours_plain, node[0], "s", f">= {GOALS['scrape_identity']}x faster",
                            node[0] >= GOALS["scrape_identity"] * ours_plain))
            rows.append(Row("scrape /metrics (gzip)", ours_gzip, node[1], "s", f">= {GOALS['scrape_gzip']}x faster",
                            node[1] >= GOALS["scrape_gzip"] * ours_gzip))
        else:
            print("node_exporter not installed: scrape baseline skipped (apt-get install prometheus-node-exporter)")
        latency = change_latency(lab, metrics, 10 if size == "quick" else 30)
        rows.append(Row(f"change latency p50 ({clients} clients)", percentile(latency, 0.5), None, "s", "", True))
        rows.append(Row(f"change latency p99 ({clients} clients)", percentile(latency, 0.99), None, "s",
                        f"<= {GOALS['latency_p99']} s", percentile(latency, 0.99) <= GOALS["latency_p99"]))
        rows.append(Row(f"RSS after first scrapes ({clients} clients)", rss_first, None, "MB",
                        f"<= {GOALS['rss_mb']:.0f} MB", rss_first <= GOALS["rss_mb"] or clients < 100_000))
        events = 2_000 if size == "quick" else 10_000
        names = sorted(lab.state.clients)
        fd_before = fds(process.pid)
        samples = []
        for burst in range(0, events, 500):
            rewrite_burst(lab, names[burst % len(names):][:500], hostile.VARIANTS[(burst // 500) % len(hostile.VARIANTS)])
            time.sleep(0.5)
            get(metrics, gzip=True)
            samples.append(rss_mb(process.pid))
        warmed = samples[len(samples) // 5:]
        growth = (max(warmed) - min(warmed)) / min(warmed)
        rows.append(Row(f"RSS spread over {events} change events", growth * 100, None, "%",
                        f"<= {GOALS['rss_growth'] * 100:.0f}% after warm-up", growth <= GOALS["rss_growth"]))
        fd_after = fds(process.pid)
        facts.update(rss_after_events_mb=round(samples[-1], 1), fds_before=fd_before, fds_after=fd_after)
        rows.append(Row("open file descriptors after the events", fd_after, fd_before, "", "no growth",
                        fd_after <= fd_before + 2))
    finally:
        process.terminate()
        process.wait(timeout=60)

    rows += poll_scrapes(lab, workdir, percentile(idle, 0.5), 20.0 if size == "quick" else 60.0)

    small = estate.init(workdir / "small", groups=4, clients=100)
    process, url = serve(small, workdir)
    try:
        latency_small = change_latency(small, f"{url}/metrics", 10 if size == "quick" else 30)
    finally:
        process.terminate()
        process.wait(timeout=60)
    rows.append(Row("change latency p99 (100 clients)", percentile(latency_small, 0.99), None, "s",
                    f"<= {GOALS['latency_p99']} s", percentile(latency_small, 0.99) <= GOALS["latency_p99"]))
    return rows, facts


def poll_scrapes(lab: estate.Lab, workdir: Path, idle_p50: float, seconds: float) -> list[Row]:
    """`serve` polling every second (the SMB-share mode), scraped back to back: no scrape may wait for a poll."""
    process, url = serve(lab, workdir, "--watch.mode=poll", "--watch.poll-interval=1")
    try:
        metrics = f"{url}/metrics"
        durations: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            durations.append(timed(lambda: get(metrics)))
    finally:
        process.terminate()
        process.wait(timeout=60)
    limit = max(GOALS["poll_scrape_ratio"] * idle_p50, GOALS["poll_scrape_floor"])
    p99 = percentile(durations, 0.99)
    return [Row(f"scrape p50 while polling every 1 s ({len(durations)} scrapes)", percentile(durations, 0.5), idle_p50, "s",
                "", True),
            Row("scrape p99 while polling every 1 s", p99, idle_p50, "s",
                f"<= max({GOALS['poll_scrape_ratio']:.0f}x idle p50, {GOALS['poll_scrape_floor'] * 1000:.0f} ms)", p99 <= limit)]


def table(rows: list[Row]) -> str:
    out = ["| measurement | sepm-exporter | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        baseline = f"{row.baseline:.3f} {row.unit}" if row.baseline is not None else ""
        ratio = ""
        if row.baseline:
            ratio = f"{row.ours / row.baseline:.2f}x" if "faster" not in row.goal else f"{row.baseline / row.ours:.1f}x faster"
        out.append(f"| {row.name} | {row.ours:.3f} {row.unit} | {baseline} | {ratio} | {row.goal} | "
                   f"{'yes' if row.met else 'NO'} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 clients instead of 100,000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/<size>.json)")
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    size = "quick" if args.quick else "full"
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="sepm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows, facts = run(size, args.repeat, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "processor": platform.processor() or platform.machine()}
    print()
    print(table(rows))
    print()
    print("facts:", ", ".join(f"{k}={v}" for k, v in facts.items()))
    target = args.json or Path(__file__).parent / "results" / f"{size}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"size": size, "machine": machine, "facts": facts,
                                  "rows": [asdict(r) for r in rows]}, indent=2) + "\n", encoding="utf-8")
    print(f"written: {target}")
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
