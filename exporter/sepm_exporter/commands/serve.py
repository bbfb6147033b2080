"""`serve`: watch the files, poll the APIs, probe the servers and answer scrapes until stopped."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from pathlib import Path

from sepm_exporter.assembly import Running
from sepm_exporter.commands.progress import Progress
from sepm_exporter.metrics import web as web_metrics
from sepm_exporter.serving.web import WebServer
from sepm_exporter.settings.config import Config, ConfigError
from sepm_exporter.settings.webconfig import WebConfig, load_web_config

log = logging.getLogger("sepm_exporter")


def external_url(config: Config, listen: str, port: int, tls: bool) -> str:
    """`external_url` as configured, else this host as others name it: the listen host when it is one, else its FQDN."""
    if config.external_url:
        return config.external_url
    host = listen.rpartition(":")[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def run_serve(config: Config, listen: str, telemetry_path: str, web_config: Path | None,
              stop: threading.Event | None = None, announce: str = "", config_source: str = "") -> int:
    """Serve until SIGINT/SIGTERM (or `stop`); the first scan runs while /-/ready says 503."""
    web = load_web_config(web_config) if web_config is not None else WebConfig()
    running = Running(config, config_source)
    server = WebServer(running.exporter, web, listen, telemetry_path)
    server.start()
    log.info("listening", extra={"address": listen, "port": server.port, "tls": web.tls is not None})
    base = external_url(config, listen, server.port, web.tls is not None)
    running.exporter.publish(web_metrics.samples(base))  # where the alerts' runbook links point (alerts/*.rules.yml)
    if announce:
        print(announce.format(port=server.port), flush=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    progress = Progress()
    try:
        running.start(progress)
    finally:
        progress.close()
    log.info("first scan done", extra={"seconds": round(running.exporter.scan_duration, 3)})
    stop.wait()
    running.stop()
    server.close()
    log.info("stopped")
    return 0


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
