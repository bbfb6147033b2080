"""`demo`: the incident lab built in a folder, its REST APIs and SEPM1's 443 started, and served."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from sepm_exporter.commands.serve import serve_or_say
from sepm_exporter.lab import estate
from sepm_exporter.lab.api import LabApi, start_for_demo
from sepm_exporter.lab.estate import atomic_write
from sepm_exporter.lab.tls import TlsListener, server_context
from sepm_exporter.settings.config import load_config


def command_prefix() -> str:
    """How to call this program from the current folder: `.venv/bin/sepm-exporter` after ./scripts/demo."""
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


ANNOUNCE = (
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
)


def write_probe(config_path: Path, server: str, endpoint: str, interval: float) -> None:
    """Add a TLS probe of `server` to the config file itself, so every command given that file sees it too."""
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for entry in raw["servers"]:
        if entry["name"] == server:
            entry["probes"] = [endpoint]
    raw["probe"] = {**raw.get("probe", {}), "interval": interval}
    atomic_write(config_path, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True).encode("utf-8"))


def run_demo(args: argparse.Namespace) -> int:
    """Build the lab, serve it, and remove it on exit unless `--dir` named where to keep it."""
    temporary = args.dir is None
    directory = Path(tempfile.mkdtemp(prefix="sepm-demo-")) if temporary else args.dir
    apache: TlsListener | None = None
    apis: list[LabApi] = []
    try:
        lab = estate.init(directory, heartbeat_seconds=args.heartbeat)
        collection = not getattr(args, "no_client_collection", False)
        config_path, apis = start_for_demo(lab, collection=collection)  # each server's REST API, as a SEPM site serves it
        apache = TlsListener(server_context(*lab.served_pair("SEPM1"))).start()  # SEPM1's 443, never restarted
        write_probe(config_path, "SEPM1", f"127.0.0.1:{apache.port}", interval=10.0)
        config = load_config(config_path)  # the very file the announcement tells `check --config` to read
        announce = ANNOUNCE.format(
            dir=shlex.quote(str(directory)), host=args.listen.rpartition(":")[0] or "localhost", path=args.telemetry_path,
            exe=command_prefix(), config=shlex.quote(str(config_path)), tls=apache.port,
            apis=", ".join(f"{api.sepm_server} {api.url}" for api in apis),
            kept="" if temporary else " (kept)", removal=" and removes the lab" if temporary else "")
        if not collection:
            announce += ("\nNo client collection: every client is judged from SEPM's records (the REST APIs' "
                         "/computers), evidence 'api'.")
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
