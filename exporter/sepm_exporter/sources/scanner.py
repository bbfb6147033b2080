"""Walking the watched roots into the inventory: stat first, read and parse only what changed.

A scan of one unit (a server's certificates, one group folder, one client) is the same code
whether a watchdog event or the periodic reconciliation asked for it: events are hints, this
is the truth.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat as stat_module
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sepm_exporter.sepm import layout
from sepm_exporter.sepm.certificate import CertificateFile, parse_certificate_file
from sepm_exporter.sepm.index2 import Index2Facts, parse_index2
from sepm_exporter.sepm.keystore import parse_keystore_file
from sepm_exporter.sepm.reasons import ParseError, Reason
from sepm_exporter.sepm.sylink import SyLinkFacts, parse_sylink
from sepm_exporter.settings.config import ClientFile, Config, ServerConfig
from sepm_exporter.sources.files import OPEN_FLAGS, Signature, forget_link_checks, read_capped, refuse_outside, signature
from sepm_exporter.sources.inventory import ClientState, CollectionState, GroupFiles, Inventory, Observed, ServerState

T = TypeVar("T")
log = logging.getLogger("sepm_exporter")


def display_name(name: str) -> str:
    """A folder name as a label: bytes that are not UTF-8 (a share mounted with the wrong charset)
    are spelled `\\xNN`, so two such names stay two labels instead of both becoming `?`."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def observe(
    path: str | Path, label: str, parse: Callable[[bytes], T], previous: Observed[T] | None, max_bytes: int,
    root: str | Path | None = None,
) -> Observed[T]:
    """Stat, and re-read only when size, mtime, ctime or identity changed since the previous read.

    Whatever goes wrong stays with this file: a parser's declared error gives its reason, and
    anything else (a bug) is logged and reported as `parser_failure` rather than ending the scan.
    """
    text = os.fspath(path)
    try:
        sig = signature(text)
    except ParseError as exc:
        return Observed(text, label, None, None, exc.reason, exc.detail)
    if previous is not None and previous.signature == sig:
        return previous
    try:
        refuse_outside(text, None if root is None else os.fspath(root))
        facts = parse(read_capped(text, max_bytes, sig.size))
    except ParseError as exc:
        return Observed(text, label, sig, None, exc.reason, exc.detail)
    except Exception as exc:  # one file must never stop the scan of the others
        log.exception("file not read", extra={"file": label})
        return Observed(text, label, sig, None, Reason.PARSER_FAILURE, f"unexpected {type(exc).__name__}")
    return Observed(text, label, sig, facts)


def _absent(path: Path | str) -> bool:
    """True only when the path is known not to exist; a folder we may not search is not "absent"."""
    try:
        os.lstat(path)
    except OSError as exc:
        return exc.errno in (errno.ENOENT, errno.ENOTDIR)
    return False


def _unchanged(path: str, known: Signature | None) -> bool:
    """True when the file still has the size, mtime and identity it had at its last read."""
    if known is None:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_mtime_ns == known.mtime_ns and st.st_size == known.size and st.st_ino == known.inode
            and st.st_dev == known.device and st.st_ctime_ns == known.ctime_ns)


def _collection_entries(path: Path) -> tuple[dict[str, str], set[str]]:
    """Folder name -> the name its labels spell, and the names that are links (d_type: no extra call).

    Streamed from the directory, never a list of DirEntry objects: 300,000 folders, most of them
    empty, must not cost 300,000 entries held at once on top of the names."""
    shown: dict[str, str] = {}
    linked: set[str] = set()
    with os.scandir(path) as entries:
        for entry in entries:
            name = entry.name
            shown[name] = display_name(name)
            if entry.is_symlink():
                linked.add(name)
    return shown, linked


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _certificate_paths(server: ServerConfig) -> list[tuple[Path, str, Path | None]]:
    """(path, label, root to stay within): a configured absolute path is followed wherever it points."""
    paths: list[tuple[Path, str, Path | None]] = [
        (server.root.joinpath(*layout.SERVER_CERTIFICATE), "/".join(layout.SERVER_CERTIFICATE), server.root)
    ]
    for extra in server.certificates:
        full = extra if extra.is_absolute() else server.root / extra
        paths.append((full, layout.relative_label(full, server.root), None if extra.is_absolute() else server.root))
    return paths


@dataclass
class Changes:
    """What moved since the last `take_changes`: the runtime re-derives only this."""

    clients: set[str] = field(default_factory=set)  # client names whose file (or duplicate) changed or went
    servers: bool = False  # any certificate, group file, stray folder or root state on a server


@dataclass(frozen=True)
class RootScan:
    """One root's part of the last full scan: how long, and whether it ended without an unexpected error."""

    seconds: float
    ok: bool


@dataclass(frozen=True, order=True)
class Unit:
    """One re-read the watcher asks for: the smallest part of a tree that a change touches."""

    kind: str  # server, certificates, group, collection, client, client_file
    root: str  # the server's name, the collection's key, or a configured client's name
    name: str = ""  # the group ID (group) or the client folder (client)


PARSE_CACHE_SIZE = 8192


class ParseCache:
    """SyLink.xml facts by the SHA-256 of the bytes: clients hold copies of a few group files.

    100,000 client files are typically a few hundred distinct contents, so the expensive part (XML,
    canonical form, embedded certificates) runs once per content; the rest is a read and a hash,
    the floor of any scan. A digest, not the content, is the key: 32 bytes held per entry (keeping
    contents as keys spared the hashing but held megabytes, measured). Errors are cached too: the
    same bytes fail the same way.
    """

    def __init__(self, size: int = PARSE_CACHE_SIZE) -> None:
        self.size = size
        self.entries: dict[bytes, SyLinkFacts | ParseError] = {}
        self.hits = 0
        self.misses = 0

    def parse(self, data: bytes, max_bytes: int) -> SyLinkFacts:
        digest = hashlib.sha256(data).digest()
        found = self.entries.get(digest)
        if found is None:
            self.misses += 1
            try:
                found = parse_sylink(data, max_bytes)
            except ParseError as exc:
                found = exc
            if len(self.entries) >= self.size:
                del self.entries[next(iter(self.entries))]  # oldest first: a bounded cache
            self.entries[digest] = found
        else:
            self.hits += 1
        if isinstance(found, ParseError):
            raise ParseError(found.reason, found.detail)
        return found


# Non-blocking (a FIFO must not hang the reader) and no link at the last step: a link goes the careful
# path, which checks where it leads. O_BINARY: Windows would translate line ends.
_READ_FLAGS = OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)


class ServerScans:
    """The server half of the scanner: certificates, the keystore and every outbox group folder.

    Kept apart from the client half (collections, client files) below: the two change for different
    reasons. The attributes are the scanner's own.
    """

    config: Config
    inventory: Inventory
    changes: Changes
    files_read: int
    parse_cache: ParseCache

    def _sylink(self, data: bytes) -> SyLinkFacts:
        self.files_read += 1
        return self.parse_cache.parse(data, self.config.max_file_bytes)

    def _index2(self, data: bytes) -> Index2Facts:
        return parse_index2(data, self.config.max_file_bytes)

    def _certificate(self, data: bytes) -> CertificateFile:
        self.files_read += 1
        return parse_certificate_file(data)

    def _keystore(self, data: bytes) -> CertificateFile:
        self.files_read += 1
        return parse_keystore_file(data)

    def scan_server(self, name: str) -> None:
        """The whole tree of one server: certificates and every group folder."""
        state = self.inventory.servers[name]
        was_up, state.root_up = state.root_up, _is_dir(state.config.root)
        if was_up != state.root_up:
            self.changes.servers = True
        if not state.root_up:
            return  # keep the last known facts: a dropped share is not a deleted server
        self.scan_certificates(name)
        outbox = state.config.root.joinpath(*layout.OUTBOX_AGENT)
        stray: dict[str, Observed[None]] = {}
        try:
            entries = {entry.name: entry for entry in os.scandir(outbox)}
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                # Unreadable, not empty: the groups keep their last known facts, and the folder is reported.
                label = "/".join(layout.OUTBOX_AGENT)
                stray[label] = Observed(os.fspath(outbox), label, None, None, Reason.UNREADABLE,
                                        exc.strerror or type(exc).__name__)
                if stray.keys() != state.stray.keys():
                    self.changes.servers = True
                state.stray = stray
                return
            entries = {}
        seen: set[str] = set()
        for entry_name in entries:
            if layout.is_group_id(entry_name):
                seen.add(entry_name)
                self.scan_group(name, entry_name)
            elif _is_dir(outbox / entry_name) and (outbox / entry_name / layout.SYLINK_NAME).exists():
                label = display_name(layout.relative_label(outbox / entry_name / layout.SYLINK_NAME, state.config.root))
                stray[label] = Observed(
                    os.fspath(outbox / entry_name), label, None, None, Reason.BAD_GROUP_FOLDER,
                    "outbox folder holds a SyLink.xml but its name is not a 32-hex group ID",
                )
        if stray.keys() != state.stray.keys():
            self.changes.servers = True
        state.stray = stray
        for group_id in [g for g in state.groups if g not in seen]:
            del state.groups[group_id]
            self.changes.servers = True

    def scan_certificates(self, name: str) -> None:
        state = self.inventory.servers[name]
        for path, label, root in _certificate_paths(state.config):
            previous = state.certificates.get(label)
            state.certificates[label] = observe(path, label, self._certificate, previous, self.config.max_file_bytes,
                                                root)
            if state.certificates[label] is not previous:
                self.changes.servers = True
        self.scan_keystore(name)

    def scan_keystore(self, name: str) -> None:
        """Tomcat's keystore, a certificate file of the server when present (an install without it is no error)."""
        state = self.inventory.servers[name]
        label = "/".join(layout.KEYSTORE)
        path = state.config.root.joinpath(*layout.KEYSTORE)
        previous = state.certificates.get(label)
        if not os.path.lexists(path):
            if state.certificates.pop(label, None) is not None:
                self.changes.servers = True
            return
        state.certificates[label] = observe(path, label, self._keystore, previous, self.config.max_file_bytes)
        if state.certificates[label] is not previous:
            self.changes.servers = True

    def scan_group(self, name: str, group_id: str) -> None:
        """One outbox folder; a folder without SyLink.xml is no group (yet).

        Plain strings and one stat per file: a reconciliation walks 2 x 1,000 of these.
        """
        state = self.inventory.servers[name]
        root = os.fspath(state.config.root)
        sep = os.sep
        folder = os.path.join(root, *layout.OUTBOX_AGENT, group_id)
        labels = f"{'/'.join(layout.OUTBOX_AGENT)}/{group_id}/"
        previous = state.groups.get(group_id)
        sylink_path = f"{folder}{sep}{layout.SYLINK_NAME}"
        sylink = observe(sylink_path, f"{labels}{layout.SYLINK_NAME}", self._sylink,
                         previous.sylink if previous else None, self.config.max_file_bytes, root)
        if sylink.reason is Reason.VANISHED and _absent(sylink_path):
            # No file, not even a dangling link; a folder we may not search is reported (unreadable), not dropped.
            if state.groups.pop(group_id, None) is not None:
                self.changes.servers = True
            return
        index_path = f"{folder}{sep}{layout.INDEX2_NAME}"
        index2: Observed[Index2Facts] | None = None
        if sylink.reason is not Reason.UNREADABLE:
            index2 = observe(index_path, f"{labels}{layout.INDEX2_NAME}", self._index2,
                             previous.index2 if previous else None, self.config.max_file_bytes, root)
            if index2.reason is Reason.VANISHED and _absent(index_path):
                index2 = None
        if previous is None or sylink is not previous.sylink or index2 is not previous.index2:
            self.changes.servers = True
            state.groups[group_id] = GroupFiles(sylink=sylink, index2=index2)

class Scanner(ServerScans):
    """Keeps the inventory in step with the disk; `changes` tells the runtime what moved."""

    def __init__(self, config: Config, inventory: Inventory | None = None) -> None:
        self.config = config
        self.inventory = inventory if inventory is not None else Inventory()
        self.files_read = 0
        self.progress: Callable[[int, int], None] | None = None  # (units done, units found)
        self.changes = Changes(servers=True)
        self.parse_cache = ParseCache()
        self.root_scans: dict[tuple[str, str], RootScan] = {}  # (server, client_root) -> its last full scan
        for server in config.servers:
            self.inventory.servers.setdefault(server.name, ServerState(config=server))
        for collection in config.collections:
            self.inventory.collections.setdefault(str(collection.path), CollectionState(path=collection.path))

    def take_changes(self) -> Changes:
        """Hand over what changed and start a new record."""
        changes, self.changes = self.changes, Changes()
        return changes

    # -- clients ----------------------------------------------------------------------------
    def scan_collection(self, key: str) -> None:
        """Every client sub-folder of one collection; clients that went are forgotten."""
        collection = self.inventory.collections[key]
        collection.root_up = _is_dir(collection.path)
        if not collection.root_up:
            return
        try:
            shown, linked = _collection_entries(collection.path)
        except OSError as exc:
            collection.root_up = False
            log.warning("client root unreadable", extra={"client_root": key, "detail": exc.strerror or type(exc).__name__})
            return
        present: set[str] = set()
        clients = self.inventory.clients
        duplicates = self.inventory.duplicates
        known: list[tuple[str, Observed[SyLinkFacts]]] = []  # read before, plain name: one stat to say "unchanged"
        careful: list[str] = []  # links, odd names, duplicates, files that changed: the one-file path
        fresh: list[str] = []  # not seen before: read and adopted in one tight loop
        for name, label in shown.items():
            state = clients.get(label)
            if name in linked or label != name:
                careful.append(name)
            elif state is None:
                fresh.append(name)
            elif state.root == key and state.sylink.signature is not None and name not in duplicates:
                known.append((name, state.sylink))
            else:
                careful.append(name)  # unreadable last time, or the label is another root's (a duplicate)
        total = len(shown)
        done = 0
        for name, observed in known:  # the reconciliation's common case, with nothing but a stat per client
            done += 1
            if _unchanged(observed.path, observed.signature):
                present.add(name)
            else:
                careful.append(name)
            if self.progress is not None and done % 500 == 0:
                self.progress(done, total)
        for client in careful:
            done += 1
            if self.scan_collection_client(key, client):
                present.add(shown[client])
            if self.progress is not None and done % 500 == 0:
                self.progress(done, total)
        self._adopt_fresh(key, fresh, present, done, total)
        collection.without_sylink = max(0, len(shown) - len(present))
        for client in [c for c, s in self.inventory.clients.items() if s.root == key and c not in present]:
            del self.inventory.clients[client]
            self.changes.clients.add(client)
        for client in [c for c, s in self.inventory.duplicates.items() if Path(s.path).parent.parent == collection.path]:
            if client not in present:
                del self.inventory.duplicates[client]
                self.changes.clients.add(client)

    def scan_collection_client(self, key: str, client: str) -> bool:
        """One client folder of a collection; False when it holds no SyLink.xml.

        The hot path of a 100,000-client scan: string paths, one stat, and a read only on change.
        """
        folder = f"{key}{os.sep}{client}"
        path = f"{folder}{os.sep}{layout.SYLINK_NAME}"
        client = display_name(client)  # the folder's name as labels spell it; `path` keeps the real one
        clients = self.inventory.clients
        duplicates = self.inventory.duplicates
        existing = clients.get(client)
        if existing is not None and existing.root != key:
            # The name is taken by another collection or a configured file: two series with one label
            # set would fail the whole scrape, so the second file is reported, not published.
            if not os.path.lexists(path):
                if client in duplicates and duplicates[client].path == path:
                    del duplicates[client]
                    self.changes.clients.add(client)
                return False
            if client not in duplicates:
                duplicates[client] = Observed(
                    path, f"{client}/{layout.SYLINK_NAME}", None, None, Reason.DUPLICATE_CLIENT,
                    f"client name already taken by {existing.root or 'config'}",
                )
                self.changes.clients.add(client)
            return True
        if self._outside_folder(key, folder, path, client, existing):
            return True
        previous = existing.sylink if existing is not None else None
        if previous is not None and _unchanged(path, previous.signature) and client not in duplicates:
            return True  # the reconciliation scan's common case: one stat, nothing else
        observed = observe(path, f"{client}/{layout.SYLINK_NAME}", self._sylink, previous, self.config.max_file_bytes,
                           key)
        if observed.signature is None and observed.reason is Reason.VANISHED and not os.path.lexists(path):
            if existing is not None:  # no file (and no dangling link): not a client, or no longer one
                del clients[client]
                self.changes.clients.add(client)
            return False
        stale_duplicate = duplicates.get(client)
        if stale_duplicate is not None and stale_duplicate.path == path:  # the first holder went: this file is it now
            del duplicates[client]
            self.changes.clients.add(client)
        if observed is not previous:
            clients[client] = ClientState(client, key, observed)
            self.changes.clients.add(client)
        return True

    def _outside_folder(self, key: str, folder: str, path: str, client: str, existing: ClientState | None) -> bool:
        """A client folder that is a link out of the collection: reported as `outside_root` from the link
        alone, never looking behind it, so the answer is the same whether its target exists or holds a
        SyLink.xml. Costs one lstat per folder on the careful path."""
        if not os.path.islink(folder):
            return False
        try:
            refuse_outside(folder, key)
        except ParseError as exc:
            if existing is None or existing.sylink.reason is not exc.reason:
                observed: Observed[SyLinkFacts] = Observed(path, f"{client}/{layout.SYLINK_NAME}", None, None,
                                                           exc.reason, "a folder link that leads out of the collection; not followed")
                self.inventory.clients[client] = ClientState(client, key, observed)
                self.changes.clients.add(client)
            return True
        return False

    def _adopt_fresh(self, key: str, fresh: list[str], present: set[str], done: int, total: int) -> None:
        """Clients not seen before, with plain names and no link: a cold scan's 100,000 files.

        The floor of any scan is open, stat, read and close; this loop adds a dict lookup (the
        parse cache) and two small records per file, and nothing else. Anything unusual (no file,
        a directory, a link, a FIFO, a file over the cap, a file changing under the read) goes the
        careful single-file path, which gives it its precise reason.
        """
        clients = self.inventory.clients
        changed = self.changes.clients
        parse = self.parse_cache.parse
        max_bytes = self.config.max_file_bytes
        sep, name_tail, label_tail = os.sep, f"{os.sep}{layout.SYLINK_NAME}", f"/{layout.SYLINK_NAME}"
        fstat, read, close, is_regular = os.fstat, os.read, os.close, stat_module.S_ISREG
        progress = self.progress
        for client in fresh:
            done += 1
            if progress is not None and done % 500 == 0:
                progress(done, total)
            path = f"{key}{sep}{client}{name_tail}"
            try:
                fd = os.open(path, _READ_FLAGS)
            except OSError:
                data = None
            else:
                try:
                    st = fstat(fd)
                    size = st.st_size
                    data = read(fd, size + 1) if is_regular(st.st_mode) and size <= max_bytes else None
                except OSError:
                    data = None
                finally:
                    close(fd)
            if data is None or len(data) != size or client in clients:
                if self.scan_collection_client(key, client):
                    present.add(client)
                continue
            sig = Signature(st.st_mtime_ns, size, st.st_ino, st.st_dev, st.st_ctime_ns)
            try:
                observed: Observed[SyLinkFacts] = Observed(path, f"{client}{label_tail}", sig, parse(data, max_bytes))
            except ParseError as exc:
                observed = Observed(path, f"{client}{label_tail}", sig, None, exc.reason, exc.detail)
            self.files_read += 1
            clients[client] = ClientState(client, key, observed)
            changed.add(client)
            present.add(client)

    def scan_client_file(self, client: ClientFile) -> None:
        existing = self.inventory.clients.get(client.name)
        previous = existing.sylink if existing is not None and existing.root == "" else None
        observed = observe(client.file, client.file.name, self._sylink, previous, self.config.max_file_bytes)
        if observed is not previous:
            self.inventory.clients[client.name] = ClientState(client.name, "", observed)
            self.changes.clients.add(client.name)

    # -- what the watcher saw -----------------------------------------------------------------
    def reread(self, units: Iterable[Unit]) -> None:
        """Re-read the units; a coarse unit makes the finer ones under it redundant."""
        units = set(units)
        forget_link_checks()
        whole_servers = {u.root for u in units if u.kind == "server"}
        whole_collections = {u.root for u in units if u.kind == "collection"}
        for unit in sorted(units):
            if unit.kind == "server":
                self.scan_server(unit.root)
            elif unit.kind == "certificates" and unit.root not in whole_servers:
                self.scan_certificates(unit.root)
            elif unit.kind == "group" and unit.root not in whole_servers:
                self.scan_group(unit.root, unit.name)
            elif unit.kind == "collection":
                self.scan_collection(unit.root)
            elif unit.kind == "client" and unit.root not in whole_collections:
                self.scan_collection_client(unit.root, unit.name)
            elif unit.kind == "client_file":
                for client in self.config.client_files:
                    if client.name == unit.root:
                        self.scan_client_file(client)

    # -- everything ---------------------------------------------------------------------------
    def scan_all(self) -> None:
        """The reconciliation scan: every unit, cheap where nothing changed.

        Each root is scanned on its own and timed: an unexpected error in one root is logged and
        marked (`root_scans`), and the other roots are still scanned.
        """
        forget_link_checks()
        for client in self.config.client_files:  # configured names win over collection folders
            self.scan_client_file(client)
        units = len(self.inventory.servers) + len(self.inventory.collections)
        for done, name in enumerate(self.inventory.servers, start=1):
            self._timed((name, ""), self.scan_server, name)
            if self.progress is not None:
                self.progress(done, units)
        for done, key in enumerate(self.inventory.collections, start=len(self.inventory.servers) + 1):
            self._timed(("", key), self.scan_collection, key)
            if self.progress is not None:
                self.progress(done, units)

    def _timed(self, root: tuple[str, str], scan: Callable[[str], None], which: str) -> None:
        started = time.perf_counter()
        ok = True
        try:
            scan(which)
        except Exception:  # a bug met on one root must not stop the others, nor freeze the state silently
            ok = False
            self.changes.servers = True
            log.exception("scan of a root failed; its last known facts stay", extra={"server": root[0], "client_root": root[1]})
        self.root_scans[root] = RootScan(time.perf_counter() - started, ok)
