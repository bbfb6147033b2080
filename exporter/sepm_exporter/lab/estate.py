"""A lab estate on disk: replication partners, groups, clients, and the steps admins and SEPM take.

The lab's own bookkeeping lives in `lab.json` beside the trees, so each `sepm-exporter lab` step
is a separate process, as an admin's actions are. Every write is atomic (temp file + rename), as
a careful server writes, so a watcher never sees a half-written file unless a step asks for one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from sepm_exporter.lab import hostile, jks, pki
from sepm_exporter.lab.sylink_writer import SyLinkSpec, render, render_index2
from sepm_exporter.sepm import layout

LAB_FILE = "lab.json"
CONFIG_FILE = "sepm-exporter.yml"
KEYSTORE_MODES = ("both", "skip", "only")
DEFAULT_SERVERS = (("SEPM1", "tokyo", "10.0.0.111"), ("SEPM2", "osaka", "10.0.1.111"))
INIT_PROFILE_AGE = 86400.0  # seconds: how old the profiles of a new lab are (made before any renewal in it)
SHARED_GROUP_NAME = "My Company"  # the PreferredGroup of every file when groups inherit one setting


@dataclass
class GroupSpec:
    """A client group: its outbox folder ID and the communication settings of its SyLink.xml."""

    group_id: str
    name: str
    heartbeat_seconds: int
    randomization_seconds: int
    mode: str
    serial: int = 1


@dataclass
class ServerSpec:
    """One SEPM: its name, replication site and the address clients use."""

    name: str
    site: str
    address: str


@dataclass
class LabState:
    """Everything the steps need to know between invocations."""

    domain_id: str
    kcs: str
    servers: list[ServerSpec]
    groups: list[GroupSpec]
    clients: dict[str, str]  # client name -> group ID
    seed: int = 1
    extra: dict[str, str] = field(default_factory=dict)
    identical_groups: bool = False  # every group inherits the same settings: byte-identical outbox files
    profiles: dict[str, int] = field(default_factory=dict)  # outbox file MD5 -> when first published (ms): its serial's time


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file + rename in the same folder: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temp.write_bytes(data)
    os.replace(temp, path)


def _hex32(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32].upper()


class LabPaths:
    """A lab folder's state and where each of its files is; `Lab` adds what an admin or SEPM does to them."""

    def __init__(self, directory: Path) -> None:
        # Absolute: the configs written from here resolve relative paths against their own folder,
        # so `lab init mylab` must not write `mylab/...` into `mylab/sepm-exporter.yml`.
        self.directory = directory.absolute()
        raw = json.loads((directory / LAB_FILE).read_text(encoding="utf-8"))
        self.state = LabState(
            domain_id=raw["domain_id"],
            kcs=raw["kcs"],
            servers=[ServerSpec(**s) for s in raw["servers"]],
            groups=[GroupSpec(**g) for g in raw["groups"]],
            clients=dict(raw["clients"]),
            seed=raw.get("seed", 1),
            extra=dict(raw.get("extra", {})),
            identical_groups=bool(raw.get("identical_groups", False)),
            profiles={str(k): int(v) for k, v in raw.get("profiles", {}).items()},
        )

    # -- paths ------------------------------------------------------------------------------
    def server_root(self, server: str) -> Path:
        return self.directory / "servers" / server / "Symantec Endpoint Protection Manager"

    def certificate_path(self, server: str) -> Path:
        return self.server_root(server).joinpath(*layout.SERVER_CERTIFICATE)

    def key_path(self, server: str) -> Path:
        return self.server_root(server).joinpath(*layout.SERVER_PRIVATE_KEY)

    def keystore_path(self, server: str) -> Path:
        return self.server_root(server).joinpath(*layout.KEYSTORE)

    @property
    def keystore_password(self) -> str:
        """The lab's keystore password (lab bookkeeping only; the exporter never needs it)."""
        return self.state.extra.get("keystore_password", "lab-keystore-" + self.state.domain_id[:8].lower())

    def group_dir(self, server: str, group_id: str) -> Path:
        return self.server_root(server).joinpath(*layout.OUTBOX_AGENT, group_id)

    def sylink_path(self, server: str, group_id: str) -> Path:
        return self.group_dir(server, group_id) / layout.SYLINK_NAME

    @property
    def clients_root(self) -> Path:
        return self.directory / "clients"

    def client_path(self, client: str) -> Path:
        return self.clients_root / client / layout.SYLINK_NAME

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_FILE

    def save(self) -> None:
        atomic_write(self.directory / LAB_FILE, json.dumps(asdict(self.state), indent=2).encode("utf-8"))

    def group(self, group_id: str) -> GroupSpec:
        for group in self.state.groups:
            if group.group_id == group_id.upper():
                return group
        raise KeyError(f"no group {group_id} in this lab")

    def server(self, name: str) -> ServerSpec:
        for server in self.state.servers:
            if server.name == name:
                return server
        raise KeyError(f"no server {name} in this lab; known: {', '.join(s.name for s in self.state.servers)}")

    # -- certificates -----------------------------------------------------------------------
    def certificate_der(self, server: str) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_pem_x509_certificate(self.certificate_path(server).read_bytes())
        return cert.public_bytes(serialization.Encoding.DER)



class Lab(LabPaths):
    """Operations on a lab folder; each method is one thing an admin or SEPM does (or a share's fault)."""

    def renew(
        self,
        server: str,
        new_key: bool,
        signature_hash: str = "sha256",
        bits: int = 2048,
        valid_days: int = 3650,
        age_days: float = 0.0,
        keystore: str = "both",
    ) -> None:
        """The SEPM console's certificate renewal, with or without "generate new key".

        `keystore` says which copies are renewed: `both` (Apache's server.crt/server.key and Tomcat's
        keystore.jks, as a complete renewal does), `skip` (only Apache's pair), `only` (only the keystore).
        """
        if keystore not in KEYSTORE_MODES:
            raise ValueError(f"keystore must be one of {', '.join(KEYSTORE_MODES)}")
        spec = self.server(server)
        key = pki.new_key(bits) if new_key else pki.load_key(self.key_path(server).read_bytes())
        self._after_last_profile()
        not_before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=age_days)
        der = pki.self_signed(
            key, spec.name, not_before, not_before + dt.timedelta(days=valid_days), signature_hash
        )
        if keystore != "only":
            if new_key:
                atomic_write(self.key_path(server), pki.key_pem(key))
            atomic_write(self.certificate_path(server), pki.pem(der))
        if keystore != "skip":
            self.write_keystore(server, key, der)

    def _after_last_profile(self) -> None:
        """A certificate's notBefore has whole seconds: a renewal in the very second a profile was
        published would date it no later than that profile. Real renewals come minutes after the last
        publish; the lab waits out the rest of that second (at most one), so a profile made before a
        renewal is dated before the certificate, as on a real SEPM."""
        newest = max(self.state.profiles.values(), default=0) / 1000.0
        now = time.time()
        if int(now) <= newest:
            time.sleep(int(newest) + 1 - now + 0.001)

    def write_keystore(self, server: str, key: rsa.RSAPrivateKey | None = None, der: bytes | None = None,
                       password: str | None = None) -> Path:
        """tomcat/etc/keystore.jks holding `key` and `der` (default: server.key and server.crt) under a password."""
        key = key if key is not None else pki.load_key(self.key_path(server).read_bytes())
        der = der if der is not None else self.certificate_der(server)
        if password is not None:
            self.state.extra["keystore_password"] = password
            self.save()
        path = self.keystore_path(server)
        atomic_write(path, jks.write_jks("scm", key, [der], self.keystore_password))
        return path

    def served_pair(self, server: str, source: str = "apache") -> tuple[rsa.RSAPrivateKey, list[bytes]]:
        """What a service loads when it starts: Apache's server.key and server.crt, or Tomcat's keystore."""
        if source == "tomcat":
            return jks.private_key_of(self.keystore_path(server).read_bytes(), self.keystore_password)
        return pki.load_key(self.key_path(server).read_bytes()), [self.certificate_der(server)]

    # -- outbox -----------------------------------------------------------------------------
    def sylink_spec(self, group: GroupSpec, heartbeat_seconds: int | None = None) -> SyLinkSpec:
        servers = tuple(
            (f"Priority{i + 1}", s.address, 8014, 443) for i, s in enumerate(self.state.servers)
        )
        certificates = tuple((s.name, self.certificate_der(s.name)) for s in self.state.servers)
        return SyLinkSpec(
            domain_id=self.state.domain_id,
            kcs=self.state.kcs,
            mode=group.mode,
            heartbeat_seconds=heartbeat_seconds if heartbeat_seconds is not None else group.heartbeat_seconds,
            randomization_seconds=group.randomization_seconds,
            site=self.state.servers[0].site,
            servers=servers,
            certificates=certificates,
            preferred_group=SHARED_GROUP_NAME if self.state.identical_groups else group.name,
        )

    def publish(self, server: str, group_ids: list[str] | None = None, made_at_ms: int | None = None) -> list[Path]:
        """SEPM rewrites the outbox: every group's SyLink.xml embeds the current certificates.

        `made_at_ms`: the profile's time (index2 LastModifiedTime, the policy serial's time); now by default.
        """
        self.server(server)
        written = []
        for group in self.state.groups:
            if group_ids is not None and group.group_id not in group_ids:
                continue
            data = render(self.sylink_spec(group))
            group.serial += 1
            path = self.sylink_path(server, group.group_id)
            atomic_write(path, data)
            checksum = hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
            now_ms = made_at_ms if made_at_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            self.state.profiles.setdefault(checksum, now_ms)
            atomic_write(path.with_name(layout.INDEX2_NAME), render_index2(group.serial, checksum, now_ms))
            written.append(path)
        self.save()
        return written

    def replicate(self, source: str, target: str) -> int:
        """Replication: the target's outbox takes the source's group files byte for byte."""
        count = 0
        for group in self.state.groups:
            for name in (layout.SYLINK_NAME, layout.INDEX2_NAME):
                src = self.group_dir(source, group.group_id) / name
                if src.exists():
                    atomic_write(self.group_dir(target, group.group_id) / name, src.read_bytes())
                    count += 1
        self.state.extra[f"replicated {source} {target}"] = repr(time.time())  # the lab API's last success
        self.save()
        return count

    def drift(self, server: str, group_id: str, heartbeat_seconds: int | None = None) -> Path:
        """One partner's copy of a group changes on its own (an edit that did not replicate)."""
        group = self.group(group_id)
        heartbeat = heartbeat_seconds if heartbeat_seconds is not None else group.heartbeat_seconds + 60
        path = self.sylink_path(server, group.group_id)
        atomic_write(path, render(self.sylink_spec(group, heartbeat)))
        return path

    def add_group(self, name: str | None = None) -> str:
        """A group appears (created in the console, published by every server)."""
        index = len(self.state.groups) + 1
        template = self.state.groups[0]
        group = GroupSpec(
            group_id=_hex32(f"{self.state.domain_id}-group-{index}-{random.random()}"),
            name=name or f"My Company\\Group {index}",
            heartbeat_seconds=template.heartbeat_seconds,
            randomization_seconds=template.randomization_seconds,
            mode=template.mode,
        )
        self.state.groups.append(group)
        for server in self.state.servers:
            self.publish(server.name, [group.group_id])
        return group.group_id

    def remove_group(self, group_id: str) -> None:
        """A group vanishes: its outbox folder goes on every server."""
        group = self.group(group_id)
        self.state.groups.remove(group)
        for server in self.state.servers:
            shutil.rmtree(self.group_dir(server.name, group.group_id), ignore_errors=True)
        self.save()

    # -- clients ----------------------------------------------------------------------------
    def pull(self, share: float, server: str | None = None, group_id: str | None = None) -> list[str]:
        """A share of the clients download their group's SyLink.xml; the rest keep what they hold."""
        source = server or self.state.servers[0].name
        rng = random.Random(self.state.seed)
        self.state.seed += 1
        names = sorted(n for n, g in self.state.clients.items() if group_id is None or g == group_id.upper())
        chosen = sorted(rng.sample(names, round(len(names) * share))) if names else []
        for name in chosen:
            atomic_write(self.client_path(name), self.sylink_path(source, self.state.clients[name]).read_bytes())
        self.save()
        return chosen

    # -- faults -----------------------------------------------------------------------------
    def age(self, seconds: float) -> int:
        """Move the clock of every file's mtime back, so tests need not wait out a heartbeat."""
        count = 0
        for path in self.directory.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.name != LAB_FILE:
                stat = path.stat()
                os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))
                count += 1
        return count

    def write_hostile(self, kind: str, target: Path) -> None:
        """Replace a file with a catalogue entry (`hostile.KINDS`) or damage its path (`hostile.FS_KINDS`)."""
        if kind in hostile.FS_KINDS:
            self._break_path(kind, target)
            return
        valid = target.read_bytes() if target.is_file() else render(self.sylink_spec(self.state.groups[0]))
        atomic_write(target, hostile.payload(kind, valid))

    def _break_path(self, kind: str, target: Path) -> None:
        if kind == "unreadable":
            target.chmod(0)
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        if kind == "symlink-loop":
            target.symlink_to(target.name)  # a link to itself
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "link-outside":
            target.symlink_to(self.outside_file())
        elif kind == "link-to-key":
            target.symlink_to(self.key_path(self.state.servers[0].name))
        else:
            target.mkdir()

    def outside_file(self) -> Path:
        """A readable file outside every watched root, standing in for /etc/shadow."""
        path = self.directory / "outside" / "secret.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not for the exporter\n", encoding="utf-8")
        return path

    def link_client_folder_outside(self, client: str) -> Path:
        """The client's folder swapped for a link to a folder outside the share holding a good copy."""
        folder = self.client_path(client).parent
        outside = self.directory / "outside" / client
        outside.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.client_path(client), outside / layout.SYLINK_NAME)
        shutil.rmtree(folder)
        folder.symlink_to(outside, target_is_directory=True)
        return folder

    def write_variant(self, kind: str, target: Path) -> None:
        """Rewrite a SyLink.xml as another valid encoding (`hostile.VARIANTS`), keeping its mtime."""
        stat = target.stat()
        atomic_write(target, hostile.variant(kind, target.read_bytes()))
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    def write_certificate_bundle(self, server: str) -> None:
        """server.crt as a chain: the leaf first, then a CA certificate after it."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ca = pki.self_signed(pki.new_key(1024), "lab-ca", now, now + dt.timedelta(days=3650))
        path = self.certificate_path(server)
        atomic_write(path, path.read_bytes() + pki.pem(ca))

    def add_stray_folder(self, server: str, name: str) -> Path:
        """An outbox folder that is not a group (not 32 hex digits), holding a copy of a group file."""
        folder = self.server_root(server).joinpath(*layout.OUTBOX_AGENT, name)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.sylink_path(server, self.state.groups[0].group_id), folder / layout.SYLINK_NAME)
        return folder

    def clone_client(self, source: str, name: str) -> Path:
        """A new client folder (any name, Japanese included) holding a copy of another client's file."""
        target = self.clients_root / name / layout.SYLINK_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.client_path(source), target)
        self.state.clients[name] = self.state.clients[source]
        self.save()
        return target

    def vanish(self, server: str) -> None:
        """The share drops: the root disappears from this host's view."""
        root = self.server_root(server)
        root.rename(root.with_name(root.name + ".away"))

    def restore(self, server: str) -> None:
        """The share returns."""
        root = self.server_root(server)
        root.with_name(root.name + ".away").rename(root)


def init(
    directory: Path,
    groups: int = 3,
    clients: int = 12,
    heartbeat_seconds: int = 300,
    randomization_seconds: int = 0,
    mode: str = "pull",
    signature_hash: str = "sha1",
    key_bits: int = 1024,
    certificate_age_days: float = 3000.0,
    valid_days: int = 3650,
    seed: int = 1,
    kcs: str | None = None,
    identical_groups: bool = False,
) -> Lab:
    """Build a replicated pair on legacy certificates, its groups and a client collection.

    `identical_groups`: every group's SyLink.xml is byte for byte the same (groups that inherit
    their communication settings), so a client's file cannot tell its group.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    domain_id = _hex32(f"domain-{seed}")
    state = LabState(
        domain_id=domain_id,
        kcs=kcs if kcs is not None else "".join(rng.choice("0123456789ABCDEF") for _ in range(32)),
        servers=[ServerSpec(name, site, address) for name, site, address in DEFAULT_SERVERS],
        groups=[
            GroupSpec(
                group_id=_hex32(f"{domain_id}-group-{i}"),
                name=f"My Company\\Group {i}",
                heartbeat_seconds=heartbeat_seconds,
                randomization_seconds=randomization_seconds,
                mode=mode,
            )
            for i in range(1, groups + 1)
        ],
        clients={},
        seed=seed,
        identical_groups=identical_groups,
    )
    for i in range(1, clients + 1):
        state.clients[f"WS-{i:04d}"] = state.groups[(i - 1) % groups].group_id
    (directory / LAB_FILE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    lab = Lab(directory)
    for server in state.servers:
        lab.renew(
            server.name,
            new_key=True,
            signature_hash=signature_hash,
            bits=key_bits,
            valid_days=valid_days,
            age_days=certificate_age_days,
        )
    made_at = int((time.time() - INIT_PROFILE_AGE) * 1000)  # the pair ran for years: its profiles are not new
    for server in state.servers:
        lab.publish(server.name, made_at_ms=made_at)
    lab.pull(1.0)
    write_config(lab)
    return lab


def write_config(lab: Lab) -> Path:
    """The exporter config for this lab, in the documented YAML format."""
    lines = ["servers:"]
    for server in lab.state.servers:
        lines += [
            f"  - name: {server.name}",
            f"    site: {server.site}",
            f"    root: {json.dumps(str(lab.server_root(server.name)), ensure_ascii=False)}",
        ]
    lines += [
        "clients:",
        f"  - collection: {json.dumps(str(lab.clients_root), ensure_ascii=False)}",
        f"state_file: {json.dumps(str(lab.directory / 'state.json'), ensure_ascii=False)}",
    ]
    atomic_write(lab.config_path, ("\n".join(lines) + "\n").encode("utf-8"))
    return lab.config_path


def _server_yaml(lab: Lab, name: str) -> str:
    spec = lab.server(name)
    return f"  - name: {name}\n    site: {spec.site}\n    root: {json.dumps(str(lab.server_root(name)), ensure_ascii=False)}\n"


def write_split_configs(lab: Lab, folder: Path, clients_on: str | None = None) -> list[Path]:
    """One exporter config per SEPM server (docs/deployment.md), each with its own state file.

    `clients_on` names the server whose exporter also watches the client collection (it then sees
    that server alone, so trust in the other servers' keys is unknown to it); None adds a separate
    clients exporter that watches every server's tree beside the collection.
    """
    folder = folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    collection = f"clients:\n  - collection: {json.dumps(str(lab.clients_root), ensure_ascii=False)}\n"
    paths = []
    for server in lab.state.servers:
        path = folder / f"{server.name}.yml"
        clients = collection if server.name == clients_on else ""
        state = json.dumps(str(folder / (server.name + ".state")), ensure_ascii=False)
        atomic_write(path, f"servers:\n{_server_yaml(lab, server.name)}{clients}state_file: {state}\n".encode())
        paths.append(path)
    if clients_on is None:
        path = folder / "clients.yml"
        servers = "".join(_server_yaml(lab, s.name) for s in lab.state.servers)
        state = json.dumps(str(folder / "clients.state"), ensure_ascii=False)
        atomic_write(path, f"servers:\n{servers}{collection}state_file: {state}\n".encode())
        paths.append(path)
    return paths
