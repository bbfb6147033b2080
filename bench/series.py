"""What the exporter costs a real Prometheus: head series and heap, per `clients.series` mode.

    flock /tmp/sepm-bench.lock .venv/bin/python bench/series.py --quick   # 2,000 and 10,000 clients
    flock /tmp/sepm-bench.lock .venv/bin/python bench/series.py           # 20,000 and 100,000 clients

For each estate size (one group per 1,000 clients on a replicated pair, as the issue's estate) and
each state (healthy; mid-incident: both servers renewed with a new key, the new file published and
replicated, half the clients pulled it), `serve` runs in each mode (`problems`, the default;
`none`; `all` without a ceiling, which is the exposition before the setting existed: the
baseline of the same run), and a fresh Prometheus 2.x scrapes it every 2 s. After the scrapes
settle, Prometheus' own /metrics gives `prometheus_tsdb_head_series` and
`go_memstats_heap_inuse_bytes`, beside an empty Prometheus (no target) measured in the same run.

Prints a table, writes it as JSON (bench/results/series-<size>.json), and exits 1 when a goal of
the issue is missed: healthy, the default mode costs at most 3,000 series at 20,000 clients (5,000
at 100,000); mid-incident at 20,000 clients every stranded client is named in some series and the
exposition stays within 25,000 series.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from sepm_exporter.lab import estate

SIZES = {"quick": (2_000, 10_000), "full": (20_000, 100_000)}
MODES = ("problems", "none", "all")  # `all` without a ceiling: today's exposition, the baseline
SCRAPES = 4  # scrapes to wait for after the first one that carries the whole exposition
INTERVAL = 2  # seconds between scrapes
HEALTHY_GOAL = {20_000: 3_000, 100_000: 5_000}
INCIDENT_GOAL = {20_000: 25_000}


@dataclass
class Row:
    clients: int
    state: str
    mode: str
    exposition_series: int  # sample lines the exporter serves (process metrics included)
    client_series: int  # lines of the sepm_client_* families
    head_series: int  # prometheus_tsdb_head_series after the scrapes
    heap_mb: float  # go_memstats_heap_inuse_bytes of that Prometheus
    stranded: int  # clients holding only the replaced keys (mid-incident), 0 when healthy
    stranded_named: int  # of those, how many some series names


class Ports:
    """Loopback ports: from `base` upwards when given (a shared machine's own range), else the OS's choice."""

    def __init__(self, base: int) -> None:
        self.next = base

    def take(self) -> int:
        if self.next:
            self.next += 1
            return self.next - 1
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def get(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def wait(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def gauge(text: bytes, name: str) -> float:
    match = re.search(rb"^" + name.encode() + rb"(?:\{[^}]*\})? (\S+)$", text, re.M)
    if match is None:
        raise RuntimeError(f"{name} not in Prometheus' own metrics")
    return float(match.group(1))


class Prometheus:
    """One Prometheus with a fresh data folder, scraping `target` (or nothing) every INTERVAL seconds."""

    def __init__(self, binary: str, folder: Path, port: int, target: str | None) -> None:
        folder.mkdir(parents=True)
        scrape = (f"scrape_configs:\n  - job_name: sepm\n    scrape_timeout: {INTERVAL}s\n"
                  f"    static_configs:\n      - targets: ['{target}']\n") if target else ""
        (folder / "prometheus.yml").write_text(f"global:\n  scrape_interval: {INTERVAL}s\n{scrape}", encoding="utf-8")
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], stdout=self.log, stderr=self.log)
        wait("prometheus ready", lambda: get(self.url + "/-/ready"), 60)

    def query(self, expr: str) -> list[dict[str, object]]:
        answer = json.loads(get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        return list(answer["data"]["result"])

    def own(self) -> bytes:
        return get(self.url + "/metrics")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()



def serve(lab: estate.Lab, folder: Path, port: int, mode: str) -> subprocess.Popen[bytes]:
    flags = ["--clients.series", mode] + (["--clients.series-limit", str(10**9)] if mode == "all" else [])
    process = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "serve", "--config", str(lab.config_path),
         "--web.listen-address", f"127.0.0.1:{port}", "--log.level=warn", "--watch.mode=events", *flags],
        stdout=subprocess.DEVNULL, stderr=open(folder / f"serve-{mode}.log", "wb"))  # noqa: SIM115
    wait("serve ready", lambda: get(f"http://127.0.0.1:{port}/-/ready"), 600)
    return process


def measure(binary: str, lab: estate.Lab, folder: Path, ports: Ports, clients: int, state: str, mode: str,
            stranded: set[str]) -> Row:
    port = ports.take()
    exporter = serve(lab, folder, port, mode)
    prometheus = None
    try:
        text = get(f"http://127.0.0.1:{port}/metrics")
        lines = [line for line in text.splitlines() if line and not line.startswith(b"#")]
        client_lines = [line for line in lines if line.startswith(b"sepm_client_")]
        named = {m.group(1).decode() for m in (re.match(rb'[a-z_]+\{client="([^"]*)"', line) for line in client_lines) if m}
        prometheus = Prometheus(binary, folder / f"prom-{clients}-{state}-{mode}", ports.take(), f"127.0.0.1:{port}")
        wait("the exposition scraped", lambda: prometheus.query('scrape_samples_scraped{job="sepm"} > 0'), 300)
        time.sleep(SCRAPES * INTERVAL)
        own = prometheus.own()
        return Row(clients, state, mode, len(lines), len(client_lines), int(gauge(own, "prometheus_tsdb_head_series")),
                   round(gauge(own, "go_memstats_heap_inuse_bytes") / 2**20, 1), len(stranded), len(stranded & named))
    finally:
        if prometheus is not None:
            prometheus.stop()
        exporter.terminate()
        exporter.wait(timeout=60)


def incident(lab: estate.Lab) -> set[str]:
    """A new-key renewal of both partners, published and replicated; half the clients pull. The rest are stranded."""
    for server in ("SEPM1", "SEPM2"):
        lab.renew(server, new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    pulled = set(lab.pull(0.5))
    return set(lab.state.clients) - pulled


def goals(rows: list[Row]) -> list[str]:
    missed = []
    for row in rows:
        if row.mode != "problems":
            continue
        if row.state == "healthy" and row.clients in HEALTHY_GOAL and row.exposition_series > HEALTHY_GOAL[row.clients]:
            missed.append(f"healthy {row.clients}: {row.exposition_series} series > {HEALTHY_GOAL[row.clients]}")
        if row.state == "incident" and row.clients in INCIDENT_GOAL:
            if row.exposition_series > INCIDENT_GOAL[row.clients]:
                missed.append(f"incident {row.clients}: {row.exposition_series} series > {INCIDENT_GOAL[row.clients]}")
            if row.stranded_named != row.stranded:
                missed.append(f"incident {row.clients}: {row.stranded - row.stranded_named} stranded clients named nowhere")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 10,000 clients instead of 20,000 and 100,000")
    parser.add_argument("--ports", type=int, default=0, help="first loopback port to use (default: any free one)")
    parser.add_argument("--json", type=Path, help="where to write the figures (default bench/results/series-<size>.json)")
    args = parser.parse_args()
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus is not installed (apt-get install prometheus)", file=sys.stderr)
        return 2
    size = "quick" if args.quick else "full"
    ports = Ports(args.ports)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sepm-series-") as temp:
        work = Path(temp)
        empty = Prometheus(binary, work / "prom-empty", ports.take(), None)
        time.sleep(SCRAPES * INTERVAL)
        empty_own = empty.own()
        empty.stop()
        empty_row = (int(gauge(empty_own, "prometheus_tsdb_head_series")),
                     round(gauge(empty_own, "go_memstats_heap_inuse_bytes") / 2**20, 1))
        for clients in SIZES[size]:
            folder = work / f"estate-{clients}"
            started = time.monotonic()
            lab = estate.init(folder / "lab", groups=max(2, clients // 1000), clients=clients)
            print(f"{clients} clients, {len(lab.state.groups)} groups: built in {time.monotonic() - started:.0f} s",
                  file=sys.stderr)
            for state in ("healthy", "incident"):
                stranded = incident(lab) if state == "incident" else set()
                for mode in MODES:
                    rows.append(measure(binary, lab, folder, ports, clients, state, mode, stranded))
                    print(rows[-1], file=sys.stderr)
            shutil.rmtree(folder)
    print(f"empty Prometheus: {empty_row[0]} head series, {empty_row[1]} MB heap in use")
    print(f"{'clients':>8} {'state':<9} {'mode':<9} {'exposed':>8} {'per-client':>10} {'head series':>11} "
          f"{'heap MB':>8} {'stranded named':>15}")
    for row in rows:
        mode = "all (today's)" if row.mode == "all" else row.mode
        named = f"{row.stranded_named}/{row.stranded}" if row.state == "incident" else "-"
        print(f"{row.clients:>8} {row.state:<9} {mode:<13} {row.exposition_series:>8} {row.client_series:>10} "
              f"{row.head_series:>11} {row.heap_mb:>8} {named:>15}")
    missed = goals(rows)
    for line in missed:
        print(f"MISSED: {line}")
    out = args.json or Path(__file__).parent / "results" / f"series-{size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"empty": {"head_series": empty_row[0], "heap_mb": empty_row[1]},
                               "rows": [asdict(r) for r in rows], "missed": missed}, indent=2), encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
