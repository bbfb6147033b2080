"""`sepm-exporter lab ...`: each lab step as a command, so an incident can be driven by hand."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sepm_exporter.lab import estate, hostile
from sepm_exporter.lab.api import FAULTS as API_FAULTS
from sepm_exporter.lab.replay import INCIDENT, KEEP_KEY, replay


def add_lab_parser(commands: Any) -> None:
    lab = commands.add_parser("lab", help="build a SEPM lab and drive the certificate incident by hand")
    steps = lab.add_subparsers(dest="step", required=True)
    init = steps.add_parser("init", help="two replication partners on legacy SHA-1 certificates, groups, clients")
    init.add_argument("dir", type=Path)
    init.add_argument("--groups", type=int, default=3)
    init.add_argument("--clients", type=int, default=12)
    init.add_argument("--heartbeat", type=int, default=300, help="seconds (default 300)")
    init.add_argument("--randomization", type=int, default=0, help="RandomizationRange seconds; 0 is off")
    init.add_argument("--mode", choices=("pull", "push"), default="pull")
    init.add_argument("--signature-hash", choices=("sha1", "sha256", "md5"), default="sha1")
    init.add_argument("--key-bits", type=int, default=1024)
    init.add_argument("--certificate-age-days", type=float, default=3000.0)
    init.add_argument("--valid-days", type=int, default=3650)
    init.add_argument("--identical-groups", action="store_true",
                      help="every group inherits the same settings: byte-identical group files")
    split = steps.add_parser("split-configs", help="write one exporter config per server (split topology)")
    split.add_argument("dir", type=Path)
    split.add_argument("--clients-on", help="the server whose exporter also watches the clients (default: a separate clients exporter)")
    renew = steps.add_parser("renew", help="renew a server certificate, with or without a new key")
    renew.add_argument("dir", type=Path)
    renew.add_argument("server")
    renew.add_argument("--new-key", action="store_true", help="tick 'generate new key' (the incident)")
    renew.add_argument("--signature-hash", choices=("sha1", "sha256", "md5"), default="sha256")
    renew.add_argument("--valid-days", type=int, default=3650)
    renew.add_argument("--keystore", choices=estate.KEYSTORE_MODES, default="both",
                       help="both: server.crt and tomcat/etc/keystore.jks (default); skip: server.crt only; "
                            "only: the keystore only")
    serve_tls = steps.add_parser("serve-tls", help="serve a server's certificate on a loopback TLS port, as loaded now")
    serve_tls.add_argument("dir", type=Path)
    serve_tls.add_argument("server")
    serve_tls.add_argument("--listen", default="127.0.0.1:0", help="host:port (default 127.0.0.1 and a free port)")
    serve_tls.add_argument("--from", dest="source", choices=("apache", "tomcat"), default="apache",
                           help="apache: server.crt and server.key (443); tomcat: keystore.jks (8443, 8446)")
    renew.add_argument("--age-days", type=float, default=0.0, help="back-date not-before (tests expiry)")
    publish = steps.add_parser("publish", help="the server rewrites every group's SyLink.xml in its outbox")
    publish.add_argument("dir", type=Path)
    publish.add_argument("server")
    replicate = steps.add_parser("replicate", help="copy the group files from one partner to another")
    replicate.add_argument("dir", type=Path)
    replicate.add_argument("source")
    replicate.add_argument("target")
    pull = steps.add_parser("pull", help="a share of the clients download their group's file")
    pull.add_argument("dir", type=Path)
    pull.add_argument("--share", type=float, default=1.0)
    pull.add_argument("--server")
    pull.add_argument("--group")
    drift = steps.add_parser("drift", help="one partner's copy of a group changes on its own")
    drift.add_argument("dir", type=Path)
    drift.add_argument("server")
    drift.add_argument("group")
    drift.add_argument("--heartbeat", type=int)
    add_group = steps.add_parser("add-group", help="a group appears on every server")
    add_group.add_argument("dir", type=Path)
    remove_group = steps.add_parser("remove-group", help="a group vanishes from every server")
    remove_group.add_argument("dir", type=Path)
    remove_group.add_argument("group")
    age = steps.add_parser("age", help="move every file's mtime back, as if time had passed")
    age.add_argument("dir", type=Path)
    age.add_argument("seconds", type=float)
    bad = steps.add_parser("hostile", help="replace a file with a hostile or broken one")
    bad.add_argument("dir", type=Path)
    kinds = {**hostile.KINDS, **hostile.PARTIAL_KINDS, **hostile.CERTIFICATE_KINDS, **hostile.KEYSTORE_KINDS,
             **hostile.FS_KINDS}
    bad.add_argument("kind", choices=sorted(kinds))
    bad.add_argument("target", type=Path, help="file to replace, relative to the lab folder or absolute")
    for name, text in (("vanish", "a server's share drops"), ("restore", "a server's share returns")):
        step = steps.add_parser(name, help=text)
        step.add_argument("dir", type=Path)
        step.add_argument("server")
    check = steps.add_parser("check", help="the exporter's report on the lab (same as `check --config`)")
    check.add_argument("dir", type=Path)
    api = steps.add_parser("api", help="serve one server's REST API over HTTPS from the lab, until stopped")
    api.add_argument("dir", type=Path)
    api.add_argument("server")
    api.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:8446", help="default 127.0.0.1:8446")
    api.add_argument("--password-file", type=Path, required=True, help="the password the API accepts for user admin")
    api.add_argument("--token-lifetime", type=float, default=3600.0, help="tokenExpiration in seconds (default 3600)")
    api.add_argument("--database-certificate-days", type=float, default=365.0,
                     help="validity of the database TLS root certificate /admin/database reports (default 365)")
    api.add_argument("--refresh", type=float, default=1.0,
                     help="seconds one reading of the estate is reused for answers (default 1; benchmarks raise it)")
    fault = steps.add_parser("api-fault", help="make a running lab API misbehave (or behave again: none)")
    fault.add_argument("dir", type=Path)
    fault.add_argument("server")
    fault.add_argument("kind", choices=API_FAULTS)
    run = steps.add_parser("replay", help="run the incident and print what an admin would have seen")
    run.add_argument("dir", type=Path)
    run.add_argument("--keep-key", action="store_true", help="the safe variant: renew without a new key")
    run.add_argument("--api-only", action="store_true",
                     help="no client collection: the exporter judges clients from the lab's REST APIs alone")


def _exporter_view(lab: estate.Lab, config: Path | None = None) -> list[str]:
    """What the exporter finds now; with `config` (the API-only one), after one poll of every API."""
    from sepm_exporter.judge.api_clients import records_of
    from sepm_exporter.runtime import Exporter
    from sepm_exporter.settings.config import load_config
    from sepm_exporter.sources.api import ApiPollers

    exporter = Exporter(load_config(config or lab.config_path))
    exporter.full_scan()
    if config is not None:  # the clients from SEPM's records only: the API families are not shown here
        pollers = ApiPollers(exporter.config.servers, lambda states: exporter.api_records(records_of(states)))
        pollers.poll_once()
        pollers.stop()
    found = exporter.report().findings
    critical = [f for f in found if f.severity.name == "CRITICAL"]
    lines = [f"{f.severity.name} {f.subject}: {f.message}" for f in critical[:6]]
    if len(critical) > 6:
        lines.append(f"... and {len(critical) - 6} more critical findings")
    return lines or ["nothing critical"]


def serve_tls(lab: estate.Lab, server: str, listen: str, source: str) -> int:
    """Serve until interrupted; the certificate is the one on disk now, like a service that is not restarted."""
    import threading

    from sepm_exporter.lab.tls import TlsListener, server_context

    host, _, port = listen.rpartition(":")
    key, chain = lab.served_pair(server, source)
    listener = TlsListener(server_context(key, chain), host.strip("[]") or "127.0.0.1", int(port or 0)).start()
    print(f"serving {server}'s {source} certificate on {host or '127.0.0.1'}:{listener.port}; "
          "renew on disk and it keeps serving this one until restarted (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    return 0


def run_lab(args: argparse.Namespace, check: Callable[[Path], int]) -> int:
    """One lab step; a missing lab, server or group is said in one line (exit 1).

    `check` is the caller's `check` command: the lab sits below the CLI and never imports it.
    """
    import sys

    try:
        return _run_lab(args, check)
    except KeyError as exc:
        print(f"lab {args.step}: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        if exc.filename and Path(exc.filename).name == estate.LAB_FILE:
            print(f"lab {args.step}: {args.dir} is not a lab (run `lab init {args.dir}` first)", file=sys.stderr)
        else:
            print(f"lab {args.step}: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1


def _run_lab(args: argparse.Namespace, check: Callable[[Path], int]) -> int:
    directory: Path = args.dir
    if args.step == "init":
        lab = estate.init(
            directory, groups=args.groups, clients=args.clients, heartbeat_seconds=args.heartbeat,
            randomization_seconds=args.randomization, mode=args.mode, signature_hash=args.signature_hash,
            key_bits=args.key_bits, certificate_age_days=args.certificate_age_days, valid_days=args.valid_days,
            identical_groups=args.identical_groups,
        )
        print(f"lab ready in {directory}; config: {lab.config_path}")
        return 0
    if args.step == "replay":
        if not (directory / estate.LAB_FILE).exists():
            estate.init(directory)
        steps = KEEP_KEY if args.keep_key else INCIDENT
        if not args.api_only:
            for line in replay(directory, steps, _exporter_view):
                print(line)
            return 0
        from sepm_exporter.lab.api import start_for_demo

        config, apis = start_for_demo(estate.Lab(directory), collection=False, refresh=0.0)  # each step seen at once
        try:
            for line in replay(directory, steps, lambda lab: _exporter_view(lab, config)):
                print(line)
        finally:
            for api in apis:
                api.shutdown()
                api.server_close()
        return 0
    if args.step == "api":
        return _serve_api(args)
    if args.step == "api-fault":
        from sepm_exporter.lab.api import set_fault

        set_fault(directory, args.server, args.kind)
        return 0
    lab = estate.Lab(directory)
    if args.step == "renew":
        lab.renew(args.server, new_key=args.new_key, signature_hash=args.signature_hash,
                  valid_days=args.valid_days, age_days=args.age_days, keystore=args.keystore)
    elif args.step == "serve-tls":
        return serve_tls(lab, args.server, args.listen, args.source)
    elif args.step == "publish":
        print(f"{len(lab.publish(args.server))} group files written")
    elif args.step == "replicate":
        print(f"{lab.replicate(args.source, args.target)} files replicated")
    elif args.step == "pull":
        pulled = len(lab.pull(args.share, args.server, args.group))
        print(f"{pulled} client{'s' if pulled != 1 else ''} pulled")
    elif args.step == "drift":
        print(lab.drift(args.server, args.group, args.heartbeat))
    elif args.step == "add-group":
        print(lab.add_group())
    elif args.step == "remove-group":
        lab.remove_group(args.group)
    elif args.step == "age":
        print(f"{lab.age(args.seconds)} files aged")
    elif args.step == "hostile":
        target = args.target if args.target.is_absolute() else directory / args.target
        lab.write_hostile(args.kind, target)
    elif args.step == "split-configs":
        for path in estate.write_split_configs(lab, directory / "split", args.clients_on):
            print(path)
    elif args.step == "vanish":
        lab.vanish(args.server)
    elif args.step == "restore":
        lab.restore(args.server)
    elif args.step == "check":
        return check(lab.config_path)
    return 0


def _serve_api(args: argparse.Namespace) -> int:
    """`lab api`: serve until SIGINT/SIGTERM; prints the URL and the CA file a config needs."""
    import signal
    import threading

    from sepm_exporter.lab.api import serve

    password = args.password_file.read_text(encoding="utf-8").removesuffix("\n")
    api = serve(args.dir, args.server, args.listen, password, args.token_lifetime, args.database_certificate_days,
                args.refresh)
    print(f"{args.server} API on {api.url} (user admin; CA file {api.ca_file})", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    api.shutdown()
    api.server_close()
    return 0
