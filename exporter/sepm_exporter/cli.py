"""The command line: serve, metrics, check, demo, textfile and the lab's steps.

Flags follow exporter conventions (`--web.listen-address`, `--log.level`); every config key that
makes sense as a flag can be given as one and overrides the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from sepm_exporter import __version__, logs
from sepm_exporter.judge.findings import Severity, findings, server_lines, worst
from sepm_exporter.judge.report import render_report
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import WATCH_MODES, Config, ConfigError, load_config

DEFAULT_LISTEN = ":10877"
log = logging.getLogger("sepm_exporter")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path,
                        help="YAML config file (see README); without it, the local SEPM install is looked for")
    parser.add_argument("--state-file", type=Path, help="override state_file: key and group-version history")
    parser.add_argument("--files.max-bytes", dest="max_bytes", type=int, help="override max_file_bytes (default 4 MiB)")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=("debug", "info", "warn", "error"))
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))


def _add_watch_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watch.mode", dest="watch_mode", choices=WATCH_MODES,
                        help="events (inotify/ReadDirectoryChanges), poll (network shares), auto (default)")
    parser.add_argument("--watch.poll-interval", dest="poll_interval", type=float, help="seconds (default 5)")
    parser.add_argument("--watch.reconcile-interval", dest="reconcile_interval", type=float,
                        help="seconds between full stat scans (default 300)")
    parser.add_argument("--watch.debounce", dest="debounce", type=float, help="quiet seconds before a re-read (default 0.2)")


def _add_web_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN, help="default :10877")
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics")
    parser.add_argument("--web.config.file", dest="web_config", type=Path, help="TLS and basic auth (exporter-toolkit format)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sepm-exporter", description="Prometheus exporter for SEPM certificates and SyLink.xml")
    parser.add_argument("--version", action="version", version=f"sepm-exporter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="watch the files and serve /metrics until stopped")
    _add_config_flags(serve)
    _add_watch_flags(serve)
    _add_web_flags(serve)
    once = commands.add_parser("metrics", help="scan once and print the exposition")
    _add_config_flags(once)
    check = commands.add_parser("check", help="scan once and print a report; exit 2 when something is critical")
    _add_config_flags(check)
    textfile = commands.add_parser("textfile", help="write the exposition for a textfile collector")
    _add_config_flags(textfile)
    textfile.add_argument("--output", type=Path, required=True, help="target file, ending in .prom")
    textfile.add_argument("--interval", type=float, default=0.0, help="rewrite every N seconds; 0 writes once")
    demo = commands.add_parser("demo", help="build the incident lab in a temporary folder and serve it")
    _add_web_flags(demo)
    demo.set_defaults(listen="127.0.0.1:10877")
    demo.add_argument("--dir", type=Path, help="lab folder (default: a new temporary folder)")
    demo.add_argument("--heartbeat", type=int, default=60, help="lab heartbeat in seconds (default 60)")
    from sepm_exporter.lab.commands import add_lab_parser

    add_lab_parser(commands)
    return parser


def effective_config(args: argparse.Namespace) -> Config:
    """The file's config (or the detected local install) with the flags laid over it."""
    config = load_config(args.config) if args.config is not None else local_install()
    overrides: dict[str, object] = {}
    if getattr(args, "state_file", None) is not None:
        overrides["state_file"] = args.state_file
    if getattr(args, "max_bytes", None) is not None:
        overrides["max_file_bytes"] = args.max_bytes
    for key in ("watch_mode", "poll_interval", "reconcile_interval", "debounce"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


def local_install() -> Config:
    """On a SEPM server, no config is needed: its own install root is found where installers put it."""
    from sepm_exporter.settings.defaults import candidate_roots, detect

    config = detect(os.environ, lambda path: Path(path).is_file(), socket.gethostname())
    if config is None:
        tried = ", ".join(str(root) for root in candidate_roots(os.environ))
        raise ConfigError([f"--config: not given, and no SEPM install found (looked in {tried})"])
    return config


def run_serve(config: Config, listen: str, telemetry_path: str, web_config: Path | None,
              stop: threading.Event | None = None, announce: str = "") -> int:
    """Serve until SIGINT/SIGTERM (or `stop`); the first scan runs while /-/ready says 503."""
    from sepm_exporter.settings.webconfig import WebConfig, load_web_config
    from sepm_exporter.sources.watcher import Watcher
    from sepm_exporter.web import WebServer

    web = load_web_config(web_config) if web_config is not None else WebConfig()
    exporter = Exporter(config)
    server = WebServer(exporter, web, listen, telemetry_path)
    server.start()
    log.info("listening", extra={"address": listen, "port": server.port, "tls": web.tls is not None})
    if announce:
        print(announce.format(port=server.port), flush=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    watcher = Watcher(exporter, config.watch_mode)
    watcher.start()
    from sepm_exporter.rest_api import pollers_for

    api = pollers_for(exporter)  # REST API polls in their own threads: a scrape never waits for them
    if api is not None:
        api.start()
    scan_with_progress(exporter)
    # The inventory is a million long-lived objects; without this, a full collection walks them all
    # from time to time and stalls scrapes and re-reads for a second at 100,000 clients.
    gc.collect()
    gc.freeze()
    log.info("first scan done", extra={"seconds": round(exporter.scan_duration, 3)})
    stop.wait()
    if api is not None:
        api.stop()
    watcher.stop()
    server.close()
    log.info("stopped")
    return 0


class Progress:
    """Scan progress on a terminal once a scan has run for a second; silent when stderr is not a tty."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, found: int) -> None:
        if not self.stream.isatty() or time.monotonic() - self.started < 1.0:
            return
        self.stream.write(f"\rscanning: {done} of {found} done")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")


def scan_with_progress(exporter: Exporter) -> None:
    """A full scan that shows progress on a terminal; later scans (from the watcher) stay quiet."""
    progress = Progress()
    exporter.scanner.progress = progress
    try:
        exporter.full_scan()
    finally:
        progress.close()
        exporter.scanner.progress = None


def scan_once(config: Config) -> Exporter:
    from sepm_exporter.rest_api import poll_once

    exporter = Exporter(config)
    scan_with_progress(exporter)
    poll_once(exporter)
    return exporter


def write_textfile(exporter: Exporter, output: Path) -> None:
    """Atomic and in the encoding windows_exporter accepts: UTF-8 without BOM, newline-terminated."""
    temp = output.with_name(f".{output.name}.tmp")
    temp.write_bytes(exporter.exposition)
    os.replace(temp, output)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(getattr(args, "log_level", "info").replace("warn", "warning"), getattr(args, "log_format", "logfmt"))
    if args.command == "lab":
        from sepm_exporter.lab.commands import run_lab

        return run_lab(args)
    if args.command == "demo":
        return run_demo(args)
    try:
        config = effective_config(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 1
    if args.command == "serve":
        try:
            return run_serve(config, args.listen, args.telemetry_path, args.web_config)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"web config error: {problem}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if args.command == "metrics":
        sys.stdout.buffer.write(scan_once(config).exposition)
        return 0
    if args.command == "textfile":
        if args.output.suffix != ".prom":
            print("--output must end in .prom (textfile collectors ignore other files)", file=sys.stderr)
            return 1
        exporter = scan_once(config)
        while True:
            write_textfile(exporter, args.output)
            if args.interval <= 0:
                return 0
            time.sleep(args.interval)
            exporter.full_scan()  # stat-first: only files that changed are read again
            from sepm_exporter.rest_api import poll_once

            poll_once(exporter)
    if args.command == "check":
        exporter = scan_once(config)
        now = exporter.clock()
        found = findings(exporter.scanner.inventory, exporter.history, exporter.derived, now)
        print(render_report(server_lines(exporter.scanner.inventory, now), found, exporter.derived.group_counts), end="")
        return 2 if worst(found) >= Severity.CRITICAL else 0
    return 1


def run_demo(args: argparse.Namespace) -> int:
    from sepm_exporter.lab import estate

    directory = args.dir or Path(tempfile.mkdtemp(prefix="sepm-demo-"))
    lab = estate.init(directory, heartbeat_seconds=args.heartbeat)
    from sepm_exporter.lab.api import start_for_demo

    config_path, apis = start_for_demo(lab)  # each server's REST API, as a SEPM site serves it
    config = load_config(config_path)
    exe = "sepm-exporter"
    announce = (
        "SEPM demo lab in {dir}\n"
        "Metrics: http://{host}:{{port}}{path}   Landing page: http://{host}:{{port}}/\n"
        "Replay the incident in another terminal, watching the metrics change:\n"
        "  {exe} lab renew {dir} SEPM1 --new-key      # SEPM1 gets a new SHA-256 key\n"
        "  {exe} lab publish {dir} SEPM1              # its outbox embeds the new key\n"
        "  {exe} lab renew {dir} SEPM2 --new-key && {exe} lab publish {dir} SEPM2\n"
        "  {exe} lab check {dir}                      # every client now untrusted\n"
        "  {exe} lab pull {dir} --share 0.5           # half the clients get the new file\n"
        "Or all at once: {exe} lab replay {dir}\n"
        "REST API (lab): {apis}; make one fail: {exe} lab api-fault {dir} SEPM1 500\n"
        "Ctrl-C stops the demo."
    ).format(apis=", ".join(f"{a.sepm_server} {a.url}" for a in apis),
             dir=directory, host=args.listen.rpartition(":")[0] or "localhost", path=args.telemetry_path, exe=exe)
    return run_serve(config, args.listen, args.telemetry_path, args.web_config, announce=announce)
