"""Watching: watchdog events as hints, debounced into targeted re-reads, plus a reconciliation loop.

Events never carry facts: a path that changed only tells which unit (a server's certificates,
one group folder, one client) to re-stat. inotify sees nothing on SMB/NFS shares, so `poll` (or
`auto` on a network file system) uses watchdog's polling observer instead.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileAttribEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from sepm_exporter.sepm import layout
from sepm_exporter.settings.config import Config
from sepm_exporter.sources.scanner import Unit

log = logging.getLogger("sepm_exporter")

NETWORK_FILESYSTEMS = frozenset({"cifs", "smb3", "smbfs", "nfs", "nfs4", "fuse.sshfs", "9p", "afs", "ncpfs", "davfs"})


# Changes only. Without a filter inotify also reports every open and every read-only close: each scan
# (ours, and watchdog's own walk when it re-adds watches) then floods the kernel queue with two events
# per file, the queue overflows, watchdog walks the tree again, and at 100,000 folders it never ends.
EVENTS: tuple[type[FileSystemEvent], ...] = (
    FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent, FileAttribEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent, EventsLostEvent,
)  # FileAttribEvent: chmod/chown/touch, so a file made readable (or unreadable) is read again at once;
# EventsLostEvent: the kernel queue overflowed, only a full scan can tell what changed


def filesystem_type(path: Path, mounts: str) -> str:
    """The type of the mount that holds `path`, from /proc/mounts text (longest mount point wins)."""
    best, kind = "", ""
    target = str(path)
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def needs_polling(path: Path) -> bool:
    """True for a UNC path on Windows or a network mount on Linux; unknown means events."""
    text = str(path)
    if text.startswith(("\\\\", "//")):
        return True
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/mounts", encoding="utf-8", errors="replace") as handle:
                return filesystem_type(path, handle.read()) in NETWORK_FILESYSTEMS
        except OSError:
            return False
    return False


def _below(path: Path, root: Path) -> tuple[str, ...] | None:
    """The parts of `path` below `root`, or None when it is not below it."""
    try:
        return path.relative_to(root).parts
    except ValueError:
        return None


def unit_of(config: Config, path: Path) -> Unit | None:
    """Which re-read a changed path calls for, or None when it is none of ours."""
    for client in config.client_files:
        if path == client.file or path.parent == client.file.parent:
            return Unit("client_file", client.name)
    outbox = layout.OUTBOX_AGENT
    for server in config.servers:
        parts = _below(path, server.root)
        if parts is None:
            continue
        # A file inside a group folder: re-read that group only. The folder itself: the whole server.
        if parts[: len(outbox)] == outbox and len(parts) > len(outbox) + 1 and layout.is_group_id(parts[len(outbox)]):
            return Unit("group", server.name, parts[len(outbox)])
        if parts[:3] == layout.SERVER_CERTIFICATE[:3] and len(parts) > 3:
            return Unit("certificates", server.name)
        return Unit("server", server.name)
    for collection in config.collections:
        parts = _below(path, collection.path)
        if parts is None:
            continue
        return Unit("client", str(collection.path), parts[0]) if len(parts) >= 2 else Unit("collection", str(collection.path))
    return None


class Target(Protocol):
    """What the watcher needs of the runtime, and nothing more: it never reaches the scanner."""

    config: Config

    @property
    def ready(self) -> bool: ...

    def count_event(self, kind: str, n: int = 1) -> None: ...

    def reread(self, units: Iterable[Unit]) -> None: ...

    def full_scan(self) -> None: ...

    def refresh(self) -> None: ...

    def root_states(self) -> dict[str, tuple[Path, bool]]: ...


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed", "closed_no_write"):
            return
        if event.event_type == "events_lost":
            self.watcher.overflowed()
            return
        kind = event.event_type if event.event_type in ("created", "modified", "deleted", "moved") else "modified"
        paths = [event.src_path]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(dest)
        self.watcher.hint(kind, [os.fsdecode(p) for p in paths])


class _OverflowSignal(logging.Handler):
    """watchdog's own warnings, in the exporter's log format instead of bare on stderr. An overflow
    line also triggers a full scan (as `EventsLostEvent` does: the two count as one overflow) and,
    since 7.0, a folder it could not watch under a watched root triggers a check of the watches."""

    LOGGERS = ("watchdog",)
    QUIET = 60.0  # one line per kind of warning this often at most: 300,000 unwatchable folders say it once

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(logging.WARNING)
        self.watcher = watcher
        self._said: dict[str, float] = {}  # message template -> when it was last written

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        lowered = message.lower()
        if "overflow" in lowered:
            self.watcher.overflowed()
        elif lowered.startswith("unable to watch"):
            self.watcher.watch_refused()
        template, now = str(record.msg), time.monotonic()
        if now - self._said.get(template, -self.QUIET) >= self.QUIET:
            self._said[template] = now
            log.log(record.levelno, "file watcher warning", extra={"detail": message[:500]})


def inotify_watched_inodes(pid: int | str = "self") -> set[int] | None:
    """The inodes this process's inotify instances watch, from /proc/PID/fdinfo; None where unknown.

    watchdog adds a recursive root's sub-folder watches one by one and drops any that fail (ENOSPC
    once fs.inotify.max_user_watches is reached) without a word, also when it rebuilds them all
    after a queue overflow. The kernel's own list is the only way to know what is really watched.
    """
    if not sys.platform.startswith("linux"):
        return None
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith("inotify wd:"):
                        for field in line.split():
                            if field.startswith("ino:"):
                                inodes.add(int(field[4:], 16))
        except (OSError, ValueError):
            continue  # closed meanwhile
    return inodes


def unwatched_folders(root: Path, watched: set[int]) -> dict[int, str]:
    """The folders a recursive watch on `root` should cover (links not followed) whose inode is not in
    `watched`. Only those are kept: at 100,000 client folders, keeping every path would cost tens of
    megabytes per check."""
    missing: dict[int, str] = {}
    try:
        inode = os.stat(root).st_ino  # a root given through a link: inotify watches where it leads
    except OSError:
        return missing
    if inode not in watched:
        missing[inode] = str(root)
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            if entry.inode() not in watched:
                                missing[entry.inode()] = entry.path
                    except OSError:
                        continue
        except OSError:
            continue  # gone or unreadable: watchdog cannot watch inside it either
    return missing


class Watcher:
    """Owns the observer, the debounce worker and the reconciliation loop."""

    def __init__(self, exporter: Target, mode: str = "auto") -> None:
        self.exporter = exporter
        self.mode = mode
        self.stop_event = threading.Event()
        self.wake = threading.Event()  # set to run the reconciliation scan now
        self.overflow_pending = False
        self.check_pending = False  # watchdog refused a new folder's watch: check them all at the next pass
        self.unwatched = 0  # folders under event-watched roots with no inotify watch (see _check_watches)
        self.overflow_signal = _OverflowSignal(self)
        self.pending: dict[Unit, float] = {}
        self.pending_lock = threading.Condition()
        self.observers: dict[str, BaseObserver] = {}
        self.threads = [
            threading.Thread(target=self._debounce_loop, name="debounce", daemon=True),
            threading.Thread(target=self._reconcile_loop, name="reconcile", daemon=True),
        ]

    def roots(self) -> list[Path]:
        config = self.exporter.config
        roots = [s.root for s in config.servers] + [c.path for c in config.collections]
        roots += list({f.file.parent for f in config.client_files})
        return roots

    def _polled(self, root: Path) -> bool:
        return self.mode == "poll" or (self.mode == "auto" and needs_polling(root))

    def _observer(self) -> BaseObserver:
        if "events" not in self.observers:
            observer = Observer()
            observer.daemon = True
            observer.start()
            self.observers["events"] = observer
        return self.observers["events"]

    def _schedule(self) -> None:
        """Attach event watches to roots that exist and have none; polled roots need no watch.

        Polling is the scanner's own stat pass every poll interval: it compares (mtime, size, inode)
        as a polling observer would, without keeping a second snapshot of the tree.
        """
        polling = False  # recomputed: a root whose watch failed (ENOSPC) and works again stops the polling
        for root in self.roots():
            key = str(root)
            if self._polled(root):
                polling = True
                continue
            if key in self._watched or not root.is_dir():
                continue
            try:
                watch = self._observer().schedule(_Handler(self), key, recursive=True, event_filter=list(EVENTS))
            except OSError as exc:
                # Typically ENOSPC: more folders than fs.inotify.max_user_watches. Polling still works,
                # and the watch is tried again at every poll (the limit may be raised meanwhile).
                if key not in self._unwatchable:
                    log.warning("cannot watch root; polling instead",
                                extra={"file": key, "detail": exc.strerror or type(exc).__name__})
                    self._unwatchable.add(key)
                polling = True
                continue
            if key in self._unwatchable:
                self._unwatchable.discard(key)
                log.info("watching root again", extra={"file": key})
            self._watched[key] = watch
        self.polling = polling

    def _reset_watches(self) -> None:
        """A root went or came back: its old watch is dead (inotify) or stale (polling), so start over."""
        for observer in self.observers.values():
            observer.unschedule_all()
        self._watched.clear()
        self._schedule()

    def watch_refused(self) -> None:
        """A folder made after the start got no watch (the inotify limit): without a check it would go
        unseen until the next full reconciliation."""
        self.check_pending = True
        self.wake.set()

    def overflowed(self) -> None:
        """Events were lost: only a full stat scan can tell what changed. Counted once per scan it
        causes: one overflow says so in a log line and in an event for each watch."""
        if not self.overflow_pending:
            self.exporter.count_event("overflow")
        self.overflow_pending = True
        self.wake.set()

    def start(self) -> None:
        self._watched: dict[str, object] = {}
        self._unwatchable: set[str] = set()
        self.polling = False
        for name in _OverflowSignal.LOGGERS:
            logging.getLogger(name).addHandler(self.overflow_signal)
            logging.getLogger(name).propagate = False  # never also the bare line of Python's last-resort handler
        self._schedule()
        log.info("watching", extra={"mode": "poll" if self.polling else "events", "roots": len(self.roots())})
        for thread in self.threads:
            thread.start()

    def hint(self, kind: str, paths: list[str]) -> None:
        """Called from observer threads: note what to re-read, and when it may be read."""
        self.exporter.count_event(kind)
        due = time.monotonic() + self.exporter.config.debounce
        with self.pending_lock:
            for text in paths:
                unit = unit_of(self.exporter.config, Path(text))
                if unit is not None:
                    self.pending[unit] = due  # each new event pushes the read back: wait for quiet
            self.pending_lock.notify()

    def _debounce_loop(self) -> None:
        while not self.stop_event.is_set():
            with self.pending_lock:
                if not self.pending:
                    self.pending_lock.wait(timeout=0.5)
                    continue
                now = time.monotonic()
                ready = {u for u, due in self.pending.items() if due <= now}
                if not ready:
                    self.pending_lock.wait(timeout=max(0.01, min(self.pending.values()) - now))
                    continue
                for unit in ready:
                    del self.pending[unit]
            try:
                self.exporter.reread(ready)
            except Exception:  # a bug in one re-read must not stop the watcher
                log.exception("re-read failed; the reconciliation scan will retry")
                self._failed()

    def _reconcile_loop(self) -> None:
        config = self.exporter.config
        check_every = min(config.poll_interval, config.reconcile_interval)
        next_full = time.monotonic() + config.reconcile_interval
        checked_once = False
        while True:
            self.wake.wait(check_every)
            self.wake.clear()
            if self.stop_event.is_set():
                return
            if not self.exporter.ready:
                continue  # the first scan is still running: roots are not "changed", just not seen yet
            overflow, self.overflow_pending = self.overflow_pending, False
            refused, self.check_pending = self.check_pending, False
            first, checked_once = not checked_once, True  # watches added at start may have been dropped too
            roots_changed = self._roots_changed()
            if roots_changed:
                self._reset_watches()
            else:
                self._schedule()
            now = time.monotonic()
            due = now >= next_full
            if first or overflow or due or self.unwatched or refused:
                self._check_watches()  # before the scan: what changes after it must reach a watch
            if roots_changed or overflow or self.polling or self.unwatched or due:
                try:
                    self.exporter.full_scan()
                except Exception:
                    log.exception("reconciliation scan failed")
                    self._failed()
                # After a root returns, a new watch starts asynchronously: scan once more soon after,
                # so a change made while it started is not left for the next full reconciliation.
                next_full = now + (min(1.0, config.reconcile_interval) if roots_changed else config.reconcile_interval)

    def _missing_watches(self) -> dict[int, str] | None:
        """Folders under the event-watched roots that inotify does not watch; None where unknown.

        The kernel's list is read before the walk: a folder made meanwhile may look missing once,
        which is why `_check_watches` looks twice before acting.
        """
        if "events" not in self.observers or not self._watched:
            return {}
        watched = inotify_watched_inodes()
        if watched is None:
            return None
        missing: dict[int, str] = {}
        for key in list(self._watched):
            missing.update(unwatched_folders(Path(key), watched))
        return missing

    def _check_watches(self) -> None:
        """Events are only worth trusting if every folder has its watch: watchdog drops sub-folder
        watches it cannot add (inotify watch limit) without a word, also when it rebuilds them after a
        queue overflow. Missing ones: watch again from scratch; still missing: scan every poll interval
        (like a polled root) and try again each time, until the limit allows them all."""
        missing = self._missing_watches()
        if not missing:  # None (not Linux) or all watched
            if self.unwatched:
                log.info("watching every folder again")
            self.unwatched = 0
            return
        # watchdog may be adding them right now (a new folder, an overflow's rebuild): look again shortly
        self.stop_event.wait(0.5)
        again = self._missing_watches() or {}
        missing = {ino: path for ino, path in again.items() if ino in missing}
        if missing:
            self._reset_watches()
            missing = self._missing_watches() or {}
        if missing and not self.unwatched:
            log.warning("some folders have no inotify watch (fs.inotify.max_user_watches?); "
                        "scanning every poll interval until they do",
                        extra={"folders": len(missing), "file": next(iter(missing.values()))})
        elif not missing and self.unwatched:
            log.info("watching every folder again")
        self.unwatched = len(missing)

    def _failed(self) -> None:
        """A whole scan failed: count it (events_total{kind="scan_failed"}) and publish what is known,
        so the exposition says so instead of freezing silently."""
        self.exporter.count_event("scan_failed")
        try:
            self.exporter.refresh()
        except Exception:
            log.exception("refresh after a failed scan failed")

    def _roots_changed(self) -> bool:
        for which, (path, up) in self.exporter.root_states().items():
            if up != _is_dir(path):
                kind, _, name = which.partition(" ")
                log.info("root state changed", extra={kind: name, "up": not up})
                return True
        return False

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        for name in _OverflowSignal.LOGGERS:
            logging.getLogger(name).removeHandler(self.overflow_signal)
        with self.pending_lock:
            self.pending_lock.notify_all()
        for observer in self.observers.values():
            observer.stop()
        for observer in self.observers.values():
            observer.join(timeout=5)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False
