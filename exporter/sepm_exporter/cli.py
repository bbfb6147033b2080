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
from sepm_exporter.judge.findings import Severity, worst
from sepm_exporter.judge.report import render_report
from sepm_exporter.judge.served import probe_findings
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import WATCH_MODES, Config, ConfigError, load_config, with_overrides
from sepm_exporter.sources.probes import Prober

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


LISTEN_ENV = "SEPM_EXPORTER_WEB_LISTEN_ADDRESS"
WEB_CONFIG_ENV = "SEPM_EXPORTER_WEB_CONFIG_FILE"


def _listen_address(text: str) -> str:
    """argparse type: a checked `host:port`, kept as written (the web server parses it again)."""
    from sepm_exporter.settings.listen import parse_listen

    try:
        parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_web_flags(parser: argparse.ArgumentParser, listen: str = "") -> None:
    """`listen` is a command's own default; without one, $SEPM_EXPORTER_WEB_LISTEN_ADDRESS or :10877.

    The environment variables exist so that a container's HEALTHCHECK (`sepm-exporter healthcheck`)
    reads the same address and web config as the `serve` it checks.
    """
    default = listen or os.environ.get(LISTEN_ENV) or DEFAULT_LISTEN
    parser.add_argument("--web.listen-address", dest="listen", default=default, type=_listen_address,
                        help=f"host:port to listen on (default {default}; ${LISTEN_ENV} sets the default)"
                        if not listen else f"host:port to listen on (default {default})")
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics")
    web_config = os.environ.get(WEB_CONFIG_ENV)
    parser.add_argument("--web.config.file", dest="web_config", type=Path, default=Path(web_config) if web_config else None,
                        help=f"TLS and basic auth (exporter-toolkit format; ${WEB_CONFIG_ENV} sets the default)")


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
    check.add_argument("--format", choices=("text", "json", "csv"), default="text",
                       help="text (default), json (every finding), csv (with --stranded only)")
    check.add_argument("--stranded", action="store_true",
                       help="list the clients to fix, with their group and the group file to import on them")
    health = commands.add_parser("healthcheck", help="exit 0 when a running `serve` answers on its listen address (for HEALTHCHECK)")
    _add_web_flags(health)
    health.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    check.add_argument("--renewal", metavar="SERVER[,SERVER...]",
                       help="what-if: renewing these servers with a new key now; exit 2 when it would strand any client")
    textfile = commands.add_parser("textfile", help="write the exposition for a textfile collector")
    _add_config_flags(textfile)
    textfile.add_argument("--output", type=Path, required=True, help="target file, ending in .prom")
    textfile.add_argument("--interval", type=float, default=0.0, help="rewrite every N seconds; 0 writes once")
    demo = commands.add_parser("demo", help="build the incident lab in a temporary folder and serve it")
    _add_web_flags(demo, listen="127.0.0.1:10877")
    demo.add_argument("--dir", type=Path, help="lab folder (default: a new temporary folder)")
    demo.add_argument("--heartbeat", type=int, default=60, help="lab heartbeat in seconds (default 60)")
    from sepm_exporter.lab.commands import add_lab_parser

    add_lab_parser(commands)
    parser.set_defaults(_commands=commands.choices)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Like parse_args, but an unknown flag is reported with the usage of the command it was given to."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command: argparse.ArgumentParser = args._commands[args.command]
        step = getattr(args, "step", None)
        if step is not None:
            command = next(a for a in command._actions if isinstance(a, argparse._SubParsersAction)).choices[step]
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def effective_config(args: argparse.Namespace) -> Config:
    """The file's config (or the detected local install) with the flags laid over it."""
    config = load_config(args.config) if args.config is not None else local_install()
    overrides = {field: (flag, getattr(args, dest)) for dest, (field, flag) in _FLAG_SETTINGS.items()
                 if getattr(args, dest, None) is not None}
    return with_overrides(config, overrides)


_FLAG_SETTINGS = {  # argparse dest -> (Config field, flag as typed)
    "state_file": ("state_file", "--state-file"),
    "max_bytes": ("max_file_bytes", "--files.max-bytes"),
    "watch_mode": ("watch_mode", "--watch.mode"),
    "poll_interval": ("poll_interval", "--watch.poll-interval"),
    "reconcile_interval": ("reconcile_interval", "--watch.reconcile-interval"),
    "debounce": ("debounce", "--watch.debounce"),
}


def local_install() -> Config:
    """On a SEPM server, no config is needed: its own install root is found where installers put it."""
    from sepm_exporter.settings.defaults import candidate_roots, detect

    config = detect(os.environ, lambda path: Path(path).is_file(), socket.gethostname())
    if config is None:
        tried = ", ".join(str(root) for root in candidate_roots(os.environ))
        raise ConfigError([f"--config: not given, and no SEPM install found (looked in {tried})"])
    return config


def run_serve(config: Config, listen: str, telemetry_path: str, web_config: Path | None,
              stop: threading.Event | None = None, announce: str = "", config_source: str = "") -> int:
    """Serve until SIGINT/SIGTERM (or `stop`); the first scan runs while /-/ready says 503."""
    from sepm_exporter.serving.web import WebServer
    from sepm_exporter.settings.webconfig import WebConfig, load_web_config
    from sepm_exporter.sources.watcher import Watcher

    web = load_web_config(web_config) if web_config is not None else WebConfig()
    exporter = Exporter(config)
    exporter.config_source = config_source
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
    prober = start_prober(exporter)
    # The inventory is a million long-lived objects; without this, a full collection walks them all
    # from time to time and stalls scrapes and re-reads for a second at 100,000 clients.
    gc.collect()
    gc.freeze()
    log.info("first scan done", extra={"seconds": round(exporter.scan_duration, 3)})
    stop.wait()
    prober.stop()
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
    try:
        exporter.full_scan(progress)
    finally:
        progress.close()


def scan_once(config: Config) -> Exporter:
    from sepm_exporter.rest_api import poll_once

    exporter = Exporter(config)
    scan_with_progress(exporter)
    poll_once(exporter)
    return exporter


def prober_for(exporter: Exporter) -> Prober:
    """The TLS prober, publishing into this exporter, compared with the keys on disk at each round."""
    from sepm_exporter.metrics.probes import probe_families
    from sepm_exporter.sources.probes import ProbeResult

    def deliver(results: list[ProbeResult]) -> None:
        exporter.publish(probe_families(results, exporter.disk_keys()), source="probes",
                         findings=lambda inventory: probe_findings(results, inventory))

    return Prober(exporter.config, deliver)


def start_prober(exporter: Exporter) -> Prober:
    """Probing starts after the first scan, so the first round already has the keys on disk to compare."""
    prober = prober_for(exporter)
    prober.start()
    return prober


def write_textfile(exporter: Exporter, output: Path) -> None:
    """Atomic and in the encoding windows_exporter accepts: UTF-8 without BOM, newline-terminated."""
    temp = output.with_name(f".{output.name}.tmp")
    temp.write_bytes(exporter.exposition)
    os.replace(temp, output)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.setup(getattr(args, "log_level", "info").replace("warn", "warning"), getattr(args, "log_format", "logfmt"))
    if args.command == "lab":
        from sepm_exporter.lab.commands import run_lab

        return run_lab(args, check=lambda config: main(["check", "--config", str(config)]))
    if args.command == "demo":
        return run_demo(args)
    if args.command == "healthcheck":
        from sepm_exporter.serving.healthcheck import healthcheck

        return healthcheck(args.listen, args.web_config, args.timeout)
    if args.command == "textfile":
        problem = _textfile_target_problem(args.output)
        if problem:
            print(f"--output: {problem}", file=sys.stderr)
            return 1
    if args.command == "check" and args.format == "csv" and not args.stranded:
        print("--format csv lists stranded clients: add --stranded", file=sys.stderr)
        return 1
    try:
        config = effective_config(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 1
    if args.command == "serve":
        source = str(args.config) if args.config is not None else "(the local SEPM install)"
        return serve_or_say(config, args.listen, args.telemetry_path, args.web_config, config_source=source)
    if args.command == "metrics":
        exporter = scan_once(config)
        prober_for(exporter).round()  # one round, bounded by probe.timeout; nothing when none are configured
        sys.stdout.buffer.write(exporter.exposition)
        return 0
    if args.command == "textfile":
        exporter = scan_once(config)
        while True:
            try:
                write_textfile(exporter, args.output)
            except OSError as exc:
                print(f"--output: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
                return 1
            if args.interval <= 0:
                return 0
            time.sleep(args.interval)
            exporter.full_scan()  # stat-first: only files that changed are read again
            from sepm_exporter.rest_api import poll_once

            poll_once(exporter)
    if args.command == "check":
        exporter = scan_once(config)
        prober_for(exporter).round()  # what the servers serve now, into the same report
        return run_check(exporter, args.format, args.stranded, args.renewal)
    return 1


def run_renewal_check(exporter: Exporter, names: list[str]) -> int:
    """`check --renewal`: the what-if for those servers; 2 when it would strand any client, 1 for a name not watched."""
    from sepm_exporter.judge import renewal

    watched = exporter.config.servers
    unknown = [n for n in names if n not in {s.name for s in watched}]
    if unknown or not names:
        print(f"--renewal: no watched server named {', '.join(unknown) or '(none given)'}; "
              f"watched: {', '.join(s.name for s in watched)}", file=sys.stderr)
        return 1
    what_if = exporter.renewal_what_if(names)
    print("\n".join(renewal.render_what_if(what_if)))
    plan = exporter.report().plan
    if plan is not None:
        print(f"  safe order: {plan.advice}")
    return 2 if what_if.stranded_count else 0


def _textfile_target_problem(output: Path) -> str:
    """Why `--output` cannot be written, before a scan is spent on it ("" when it can)."""
    if output.suffix != ".prom":
        return "must end in .prom (textfile collectors ignore other files)"
    if not output.parent.is_dir():
        return f"folder {output.parent} does not exist (create it, or point --output at the collector's folder)"
    return ""


def run_check(exporter: Exporter, fmt: str, stranded_only: bool, renewal_arg: str | None = None) -> int:
    """The report (with its renewal plan), the findings as JSON, or the stranded-client list; exit 2 when
    something is critical. With `--renewal`, the exit code answers the what-if alone."""
    from sepm_exporter.judge import renewal
    from sepm_exporter.judge.export import findings_json, stranded_csv, stranded_json

    report = exporter.report()
    found = report.findings
    if stranded_only:
        sys.stdout.write(stranded_csv(report.stranded) if fmt == "csv" else stranded_json(report.stranded))
    elif fmt == "json":
        plan = renewal.plan_data(report.plan) if report.plan is not None else None
        sys.stdout.write(findings_json(report.rows, worst(found), report.at, plan))
    else:
        print(render_report(report.servers, found, report.counts), end="")
        if report.plan is not None:
            print("\n".join(renewal.render_plan(report.plan)))
    if renewal_arg is not None:
        return run_renewal_check(exporter, [n.strip() for n in renewal_arg.split(",") if n.strip()])
    return 2 if worst(found) >= Severity.CRITICAL else 0


def serve_or_say(config: Config, listen: str, telemetry_path: str, web_config: Path | None,
                 announce: str = "", config_source: str = "") -> int:
    """`run_serve`, with a web config or listen problem said in one line (exit 1)."""
    try:
        return run_serve(config, listen, telemetry_path, web_config, announce=announce, config_source=config_source)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"web config error: {problem}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _command_prefix() -> str:
    """How to call this program from the current folder: `.venv/bin/sepm-exporter` after ./scripts/demo."""
    import shutil

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidate = Path(sys.executable).parent / "sepm-exporter"
    if script is not None and script.name == "sepm-exporter" and script.exists():
        candidate = script
    if not candidate.exists():
        return f"{Path(sys.executable)} -m sepm_exporter"
    on_path = shutil.which("sepm-exporter")
    if on_path is not None and Path(on_path).resolve() == candidate.resolve():
        return "sepm-exporter"
    try:
        return str(candidate.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(candidate.absolute())


def run_demo(args: argparse.Namespace) -> int:
    """Build the lab, serve it, and remove it on exit unless `--dir` named where to keep it."""
    import shlex
    import shutil

    from sepm_exporter.lab import estate
    from sepm_exporter.lab.api import LabApi
    from sepm_exporter.lab.tls import TlsListener, server_context
    from sepm_exporter.settings.config import ProbeTarget

    temporary = args.dir is None
    directory = Path(tempfile.mkdtemp(prefix="sepm-demo-")) if temporary else args.dir
    apache: TlsListener | None = None
    apis: list[LabApi] = []
    try:
        lab = estate.init(directory, heartbeat_seconds=args.heartbeat)
        from sepm_exporter.lab.api import start_for_demo

        config_path, apis = start_for_demo(lab)  # each server's REST API, as a SEPM site serves it
        config = load_config(config_path)
        apache = TlsListener(server_context(*lab.served_pair("SEPM1"))).start()  # SEPM1's 443, never restarted
        probed = dataclasses.replace(config.servers[0], probes=(ProbeTarget("127.0.0.1", apache.port),))
        config = dataclasses.replace(config, servers=(probed, *config.servers[1:]), probe_interval=10.0)
        exe = _command_prefix()
        folder = shlex.quote(str(directory))
        announce = (
            "SEPM demo lab in {dir}{kept}\n"
            "Metrics: http://{host}:{{port}}{path}   Landing page: http://{host}:{{port}}/\n"
            "Replay the incident in another terminal (from this folder), watching the landing page change:\n"
            "  {exe} lab renew {dir} SEPM1 --new-key      # SEPM1 gets a new SHA-256 key: clients stop trusting it\n"
            "  {exe} lab renew {dir} SEPM2 --new-key      # and so does its partner\n"
            "  {exe} lab publish {dir} SEPM1              # SEPM1's outbox embeds the new keys\n"
            "  {exe} lab replicate {dir} SEPM1 SEPM2      # replicate FIRST: both partners serve the same file\n"
            "  {exe} lab check {dir}                      # every client untrusted: the outage\n"
            "  {exe} lab pull {dir} --share 0.5           # half the clients import the new file: current again\n"
            "  {exe} check --config {config} --stranded --format csv   # the rest, with the file to import\n"
            "Or all at once: {exe} lab replay {dir}\n"
            "REST API (lab): {apis}; make one fail: {exe} lab api-fault {dir} SEPM1 500\n"
            "SEPM1's 443 is played by 127.0.0.1:{tls}, which loaded SEPM1's certificate at start and is never\n"
            "restarted: after the renewal, sepm_served_certificate_key_match says 'renewed on disk, not yet restarted'.\n"
            "Ctrl-C stops the demo{removal}."
        ).format(dir=folder, host=args.listen.rpartition(":")[0] or "localhost", path=args.telemetry_path, exe=exe,
                 config=shlex.quote(str(config_path)), tls=apache.port,
                 apis=", ".join(f"{api.sepm_server} {api.url}" for api in apis),
                 kept="" if temporary else " (kept)", removal=" and removes the lab" if temporary else "")
        return serve_or_say(config, args.listen, args.telemetry_path, args.web_config, announce=announce,
                            config_source=str(config_path))
    except KeyboardInterrupt:  # Ctrl-C while the lab is being built, before serve takes the signal over
        return 130
    finally:
        if apache is not None:
            apache.close()
        for api in apis:
            api.shutdown()
            api.server_close()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
