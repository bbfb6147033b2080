"""The REST API benchmark: one poll of a lab estate, against bare HTTP + JSON decoding of the same pages.

    .venv/bin/python bench/api.py --quick      # 10,000 computers: under a minute
    .venv/bin/python bench/api.py              # 100,000 computers: a few minutes (most of it building the lab)

It builds the estate with the SEPM lab and serves it with `sepm-exporter lab api` in its own
process (the estate is read once: `--refresh` is raised, so every request measures answering, not
re-reading the lab). Then, alternating, each in a fresh process so peak memory is its own:

- exporter: `sources.api.poll` as `serve` runs it: login, every page of /groups and /computers
  decoded into facts, folded into per-group tallies and kept in the columnar computer store, then
  the three single answers;
- today: the poll as it was before computers were kept (tallies only): the memory baseline;
- bare: the same requests over the same httpx client and TLS, each page only decoded from JSON
  (`response.json()`) and counted: the floor any client pays.

Reported: wall time and the client process's CPU time (medians), the exporter's cost over the
floor, the peak of Python allocations during one poll and what the poll keeps afterwards
(tracemalloc, in a run of its own), and each process's peak RSS (VmHWM) and RSS after the poll
with its result held (VmRSS). Goals: the exporter's wall time within 1.3x the floor, and both its
RSS figures at most 60 MB over today's. Writes
bench/results/api-<size>.json; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"quick": (10_000, 100), "full": (100_000, 1_000)}
GOALS = {"time_ratio": 1.3, "extra_rss_mb": 60.0}
PASSWORD = "bench-password"


def child(kind: str, url: str, ca_file: str, page_size: int) -> None:
    """One measured run in this process; prints a JSON line with wall and CPU seconds, or (kinds
    ending in `-memory`) the peak of Python allocations during the run, traced by tracemalloc."""
    import tracemalloc

    import httpx  # noqa: F401 - imported in every kind, so the idle baseline carries the same modules

    from sepm_exporter.sepm.rest import Tally, decode_computer, decode_group
    from sepm_exporter.settings.config import ApiConfig
    from sepm_exporter.sources.api import ApiClient, poll

    config = ApiConfig(url=url, username="admin", password_env="BENCH_API_PASSWORD", ca_file=Path(ca_file),
                       interval=600, timeout=60, page_size=page_size)
    client = ApiClient(config)
    client.login()  # both kinds start logged in, on a warm TLS connection
    client.get("/version")
    memory = kind.endswith("-memory")
    kind = kind.removesuffix("-memory")
    if memory:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    items = 0
    kept: object = None
    if kind == "exporter":
        snapshot = poll(client, time.time())
        items = len(snapshot.computers or ())
        kept = snapshot
    elif kind == "today":  # the fold alone, as polls were before computers were kept
        groups = [decode_group(item) for page in client.pages("/groups", page_size) for item in page]
        tally = Tally(groups, time.time())
        for page in client.pages("/computers", page_size, {"sort": "COMPUTER_NAME"}):
            for item in page:
                tally.add(decode_computer(item))
        for path in ("/stats/client/onlinestatus", "/replication/status", "/admin/database"):
            client.get(path)
        summaries = tally.summaries()
        items = sum(g.online + g.offline for g in summaries)
        kept = summaries
    elif kind == "bare":
        for path, params in (("/groups", {}), ("/computers", {"sort": "COMPUTER_NAME"})):
            index = 1
            while True:
                doc = client.get(path, {**params, "pageIndex": index, "pageSize": page_size})
                if path == "/computers":
                    items += len(doc["content"])
                if doc["lastPage"] or not doc["content"]:
                    break
                index += 1
        for path in ("/stats/client/onlinestatus", "/replication/status", "/admin/database"):
            client.get(path)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    kept_mb, peak_mb = (n / 2**20 for n in tracemalloc.get_traced_memory()) if memory else (0.0, 0.0)
    rss_mb, held_mb = status_mb("VmHWM"), status_mb("VmRSS")  # peak, and resident now with the poll's result held
    del kept
    print(json.dumps({"kind": kind, "seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, "kept_mb": kept_mb,
                      "rss_mb": rss_mb, "held_mb": held_mb, "computers": items}))


def status_mb(field: str) -> float:
    """A /proc/self/status figure in MB. Not getrusage's ru_maxrss: Linux carries it over fork and exec,
    so every child would report the parent's peak (the bench process holds the 100,000-computer lab)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, url: str, ca_file: Path, page_size: int) -> dict[str, float]:
    import os

    env = {**os.environ, "BENCH_API_PASSWORD": PASSWORD}
    out = subprocess.run([sys.executable, __file__, "--child", kind, url, str(ca_file), str(page_size)],
                         check=True, capture_output=True, text=True, env=env)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page-size", type=int, action="append", help="default: 100 and 1000")
    parser.add_argument("--dir", type=Path, help="keep the lab here (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, ca_file, page_size = args.child
        child(kind, url, ca_file, int(page_size))
        return 0

    from sepm_exporter.lab import estate
    from sepm_exporter.lab.api import free_socket_port, tls_files

    size = "quick" if args.quick else "full"
    computers, groups = SIZES[size]
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="sepm-api-bench-"))
    lab_dir = workdir / "lab"
    started = time.perf_counter()
    lab = estate.Lab(lab_dir) if (lab_dir / estate.LAB_FILE).exists() else estate.init(lab_dir, groups=groups, clients=computers)
    print(f"lab of {len(lab.state.clients):,} computers in {len(lab.state.groups):,} groups ready in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    password_file = workdir / "password"
    password_file.write_text(PASSWORD, encoding="utf-8")
    ca_file, _ = tls_files(lab_dir, "SEPM1")
    port = free_socket_port()
    log = workdir / "lab-api.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "sepm_exporter", "lab", "api", str(lab_dir), "SEPM1", "--web.listen-address",
         f"127.0.0.1:{port}", "--password-file", str(password_file), "--refresh", "86400"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    rows: list[dict[str, object]] = []
    met = True
    try:
        deadline = time.monotonic() + 60
        while b"API on" not in log.read_bytes():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"lab api did not start: {log.read_text()}")
            time.sleep(0.1)
        url = f"https://127.0.0.1:{port}/sepm/api/v1"
        warm = run_child("bare", url, ca_file, 1000)  # the lab reads its estate once, on the first request
        assert warm["computers"] == computers, warm
        for page_size in args.page_size or [100, 1000]:
            runs: dict[str, list[dict[str, float]]] = {"exporter": [], "today": [], "bare": []}
            for _ in range(args.repeat):
                for kind in ("exporter", "today", "bare"):
                    runs[kind].append(run_child(kind, url, ca_file, page_size))
            assert all(r["computers"] == computers for rs in runs.values() for r in rs)
            ours = statistics.median(r["seconds"] for r in runs["exporter"])
            floor = statistics.median(r["seconds"] for r in runs["bare"])
            ours_cpu = statistics.median(r["cpu"] for r in runs["exporter"])
            floor_cpu = statistics.median(r["cpu"] for r in runs["bare"])
            ours_traced = run_child("exporter-memory", url, ca_file, page_size)
            today_traced = run_child("today-memory", url, ca_file, page_size)
            floor_mem = run_child("bare-memory", url, ca_file, page_size)["peak_mb"]
            ours_rss = statistics.median(r["rss_mb"] for r in runs["exporter"])
            today_rss = statistics.median(r["rss_mb"] for r in runs["today"])
            ours_held = statistics.median(r["held_mb"] for r in runs["exporter"])
            today_held = statistics.median(r["held_mb"] for r in runs["today"])
            ok = (ours <= GOALS["time_ratio"] * floor and ours_rss - today_rss <= GOALS["extra_rss_mb"]
                  and ours_held - today_held <= GOALS["extra_rss_mb"])
            met &= ok
            rows.append({"page_size": page_size, "pages": -(-computers // page_size), "exporter_seconds": ours,
                         "today_seconds": statistics.median(r["seconds"] for r in runs["today"]),
                         "bare_seconds": floor, "ratio": ours / floor, "exporter_cpu": ours_cpu, "bare_cpu": floor_cpu,
                         "exporter_peak_mb": ours_traced["peak_mb"], "today_peak_mb": today_traced["peak_mb"],
                         "bare_peak_mb": floor_mem, "exporter_kept_mb": ours_traced["kept_mb"],
                         "today_kept_mb": today_traced["kept_mb"], "exporter_rss_mb": ours_rss, "today_rss_mb": today_rss,
                         "exporter_held_mb": ours_held, "today_held_mb": today_held,
                         "bare_rss_mb": statistics.median(r["rss_mb"] for r in runs["bare"]), "met": ok})
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(f"\n{computers:,} computers, {groups:,} groups; wall, client CPU and RSS: median of {args.repeat}; "
          "peak and kept: Python allocations during and after the poll (tracemalloc); RSS: the process's peak")
    print("| page size | pages | exporter wall | today wall | bare wall | ratio | exporter CPU | bare CPU | exporter peak "
          "| today peak | kept (exporter / today) | peak RSS (exporter / today / bare) | RSS after (exporter / today) | goal |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['page_size']} | {row['pages']:,} | {row['exporter_seconds']:.2f} s | {row['today_seconds']:.2f} s | "
              f"{row['bare_seconds']:.2f} s | {row['ratio']:.2f} | {row['exporter_cpu']:.2f} s | {row['bare_cpu']:.2f} s | "
              f"{row['exporter_peak_mb']:.1f} MB | {row['today_peak_mb']:.1f} MB | "
              f"{row['exporter_kept_mb']:.1f} / {row['today_kept_mb']:.1f} MB | {row['exporter_rss_mb']:.0f} / "
              f"{row['today_rss_mb']:.0f} / {row['bare_rss_mb']:.0f} MB | {row['exporter_held_mb']:.0f} / "
              f"{row['today_held_mb']:.0f} MB | {'met' if row['met'] else 'MISSED'} |")
    target = args.json or Path(__file__).parent / "results" / f"api-{size}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"computers": computers, "groups": groups, "goals": GOALS,
                                  "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
