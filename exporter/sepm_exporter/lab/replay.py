"""`lab replay`: the incident, step by step, with what an admin checking files would have seen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from sepm_exporter.lab.estate import Lab

Step = tuple[str, Callable[[Lab], object]]

INCIDENT: tuple[Step, ...] = (
    ("SEPM1 renews its certificate with 'generate new key' (SHA-256, 2048-bit)",
     lambda lab: lab.renew("SEPM1", new_key=True)),
    ("SEPM2 renews its certificate with 'generate new key'", lambda lab: lab.renew("SEPM2", new_key=True)),
    ("SEPM1 rewrites every group's SyLink.xml in its outbox", lambda lab: lab.publish("SEPM1")),
    ("Replication SEPM1 -> SEPM2: partners hold identical group files", lambda lab: lab.replicate("SEPM1", "SEPM2")),
    ("A heartbeat passes: clients cannot read the new certificate, none downloads the new file",
     lambda lab: lab.age(3600)),
)

KEEP_KEY: tuple[Step, ...] = (
    ("SEPM1 renews its certificate WITHOUT a new key", lambda lab: lab.renew("SEPM1", new_key=False)),
    ("SEPM2 renews its certificate WITHOUT a new key", lambda lab: lab.renew("SEPM2", new_key=False)),
    ("SEPM1 rewrites its outbox; replication copies it to SEPM2",
     lambda lab: (lab.publish("SEPM1"), lab.replicate("SEPM1", "SEPM2"))),
    ("A heartbeat passes; half the clients pull the new file", lambda lab: (lab.age(3600), lab.pull(0.5))),
)


def _date(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def admin_view(lab: Lab) -> list[str]:
    """The checks the admins made in the incident: all of them looked fine."""
    lines = []
    for server in lab.state.servers:
        der = lab.certificate_der(server.name)
        from sepm_exporter.sepm.certificate import parse_der

        facts = parse_der(der)
        lines.append(
            f"{server.name}: server.crt valid until {_date(facts.not_after)}, {facts.signature_hash}, "
            f"key {facts.public_key_sha256[:12]}"
        )
    same = all(
        lab.sylink_path(lab.state.servers[0].name, g.group_id).read_bytes()
        == lab.sylink_path(s.name, g.group_id).read_bytes()
        for g in lab.state.groups
        for s in lab.state.servers
    )
    lines.append(f"group SyLink.xml identical on all partners: {'yes' if same else 'no'}")
    return lines


def replay(directory: Path, steps: tuple[Step, ...], observe: Callable[[Lab], list[str]]) -> list[str]:
    """Run steps on an existing lab; after each, the admin's view and the exporter's."""
    lab = Lab(directory)
    out: list[str] = ["== before: the pair as it ran for years", *[f"   exporter:   {x}" for x in observe(lab)]]
    for number, (title, action) in enumerate(steps, start=1):
        action(lab)
        lab = Lab(directory)
        out.append(f"== step {number}: {title}")
        out += [f"   admin sees: {line}" for line in admin_view(lab)]
        out += [f"   exporter:   {line}" for line in observe(lab)]
    return out
