"""What the scanner last saw: one record per watched file, grouped by server and client.

Plain data: the scanner (I/O) writes it, the derivations (pure) read it, nothing here touches disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from sepm_exporter.sepm.certificate import CertificateFile
from sepm_exporter.sepm.index2 import Index2Facts
from sepm_exporter.sepm.reasons import Reason
from sepm_exporter.sepm.sylink import SyLinkFacts
from sepm_exporter.settings.config import ServerConfig
from sepm_exporter.sources.files import Signature

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Observed(Generic[T]):
    """One read of one file: facts, or the reason there are none.

    Compared by identity: the scanner hands back the very same object while a file is unchanged,
    which is how the runtime knows what changed. Not frozen, because frozen dataclasses are slow
    to build and a cold scan builds 100,000 of these.
    """

    path: str  # as given to the OS (a string: 100,000 Path objects cost more than the facts)
    label: str  # the `file` label: below its watched root, `/`-separated
    signature: Signature | None
    facts: T | None
    reason: Reason | None = None
    detail: str = ""

    @property
    def mtime(self) -> float | None:
        return self.signature.mtime if self.signature is not None else None


@dataclass
class GroupFiles:
    """One group's outbox folder on one server."""

    sylink: Observed[SyLinkFacts]
    index2: Observed[Index2Facts] | None = None


@dataclass
class ServerState:
    """A server tree as last seen; facts are kept while its root is down."""

    config: ServerConfig
    root_up: bool = False
    certificates: dict[str, Observed[CertificateFile]] = field(default_factory=dict)
    groups: dict[str, GroupFiles] = field(default_factory=dict)
    stray: dict[str, Observed[None]] = field(default_factory=dict)  # errors outside known files

    @property
    def server_certificate(self) -> Observed[CertificateFile] | None:
        from sepm_exporter.sepm.layout import SERVER_CERTIFICATE

        return self.certificates.get("/".join(SERVER_CERTIFICATE))


@dataclass(slots=True)
class ClientState:
    """One client's SyLink.xml."""

    name: str
    root: str  # the collection folder it was found in, "" for a configured single file
    sylink: Observed[SyLinkFacts]


@dataclass
class CollectionState:
    """A client collection folder."""

    path: Path
    root_up: bool = False
    without_sylink: int = 0  # folders (and stray files) holding no SyLink.xml, as of the last scan of the folder


@dataclass
class Inventory:
    """Everything seen, keyed so that labels cannot collide."""

    servers: dict[str, ServerState] = field(default_factory=dict)
    collections: dict[str, CollectionState] = field(default_factory=dict)
    clients: dict[str, ClientState] = field(default_factory=dict)
    duplicates: dict[str, Observed[None]] = field(default_factory=dict)  # client files whose name is taken
