"""The command line: flags parsed, then handed to the command (`commands/`, `lab/`, `serving.healthcheck`).

Flags follow exporter conventions (`--web.listen-address`, `--log.level`); every config key that
makes sense as a flag can be given as one and overrides the file.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from sepm_exporter import __version__, logs
from sepm_exporter.settings.config import CLIENT_SERIES, WATCH_MODES, Config, ConfigError, load_config, with_overrides

DEFAULT_LISTEN = ":10877"
log = logging.getLogger("sepm_exporter")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path,
                        help="YAML config file (see README); without it, the local SEPM install is looked for")
    parser.add_argument("--state-file", type=Path, help="override state_file: key and group-version history")
    parser.add_argument("--files.max-bytes", dest="max_bytes", type=int, help="override max_file_bytes (default 4 MiB)")
    parser.add_argument("--clients.series", dest="client_series", choices=CLIENT_SERIES,
                        help="which clients get series of their own: problems (default: those that need action), all, none")
    parser.add_argument("--clients.series-limit", dest="client_series_limit", type=int,
                        help="override clients.series_limit: the most per-client series (default 20000)")
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
    serve.add_argument("--web.external-url", dest="external_url",
                       help="the URL users reach this exporter at (behind a proxy, say); the alerts' runbook links "
                       "start with it (default: http(s)://<this host's name>:<port>; config key external_url)")
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
                       help="what-if: renewing these servers with a new key now; exit 2 when anything is critical "
                       "or it would strand a client")
    textfile = commands.add_parser("textfile", help="write the exposition for a textfile collector")
    _add_config_flags(textfile)
    textfile.add_argument("--output", type=Path, required=True, help="target file, ending in .prom")
    textfile.add_argument("--interval", type=float, default=0.0, help="rewrite every N seconds; 0 writes once")
    demo = commands.add_parser("demo", help="build the incident lab in a temporary folder and serve it")
    _add_web_flags(demo, listen="127.0.0.1:10877")
    demo.add_argument("--dir", type=Path, help="lab folder (default: a new temporary folder)")
    demo.add_argument("--heartbeat", type=int, default=60, help="lab heartbeat in seconds (default 60)")
    demo.add_argument("--no-client-collection", action="store_true",
                      help="watch no client file: SEPM's records (the lab's REST APIs) are the only client evidence")
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
    "external_url": ("external_url", "--web.external-url"),
    "client_series": ("client_series", "--clients.series"),
    "client_series_limit": ("client_series_limit", "--clients.series-limit"),
}


def local_install() -> Config:
    """On a SEPM server, no config is needed: its own install root is found where installers put it."""
    from sepm_exporter.settings.defaults import candidate_roots, detect

    config = detect(os.environ, lambda path: Path(path).is_file(), socket.gethostname())
    if config is None:
        tried = ", ".join(str(root) for root in candidate_roots(os.environ))
        raise ConfigError([f"--config: not given, and no SEPM install found (looked in {tried})"])
    return config


BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a program its pipe's reader left


def main(argv: list[str] | None = None) -> int:
    """The command, with a reader that stops early (`check | head`) said in one line, not a traceback."""
    try:
        return dispatch(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush at exit must not fail again
        print("sepm-exporter: the output was closed before it ended (broken pipe)", file=sys.stderr)
        return BROKEN_PIPE_EXIT


def dispatch(argv: list[str] | None = None) -> int:
    """Parse, then hand over to the command. Commands are imported where they run, so `healthcheck`
    (every 30 s in a container) and `--version` do not load the parsers and the lab."""
    args = parse_args(argv)
    logs.setup(getattr(args, "log_level", "info").replace("warn", "warning"), getattr(args, "log_format", "logfmt"))
    if args.command == "lab":
        from sepm_exporter.lab.commands import run_lab

        return run_lab(args, check=lambda config: main(["check", "--config", str(config)]))
    if args.command == "demo":
        from sepm_exporter.commands.demo import run_demo

        return run_demo(args)
    if args.command == "healthcheck":
        from sepm_exporter.serving.healthcheck import healthcheck

        return healthcheck(args.listen, args.web_config, args.timeout)
    if args.command == "textfile":
        from sepm_exporter.commands.once import textfile_target_problem

        problem = textfile_target_problem(args.output)
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
        from sepm_exporter.commands.serve import serve_or_say

        source = str(args.config) if args.config is not None else "(the local SEPM install)"
        return serve_or_say(config, args.listen, args.telemetry_path, args.web_config, config_source=source)
    if args.command == "metrics":
        from sepm_exporter.commands.once import run_metrics

        return run_metrics(config)
    if args.command == "textfile":
        from sepm_exporter.commands.once import run_textfile

        return run_textfile(config, args.output, args.interval)
    if args.command == "check":
        from sepm_exporter.commands.check import run_check_command

        return run_check_command(config, args.format, args.stranded, args.renewal)
    return 1
