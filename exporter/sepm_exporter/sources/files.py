"""Reading one watched file: the single place where OS errors become typed reasons.

`stat` first (cheap, and it tells a renamed-in file from the same file); read with a cap so a
64 MB file on a share never reaches the parser. Nothing but a regular file is ever read: the open
is non-blocking (a FIFO named SyLink.xml would otherwise wait for a writer forever) and the type
is checked again on the open descriptor. Links are followed only while they stay inside their
watched root, and never to a private key (docs/security.md).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from pathlib import Path
from typing import NamedTuple

from sepm_exporter.sepm.reasons import ParseError, Reason


class Signature(NamedTuple):
    """What changes when a file is rewritten, renamed over, or swapped behind a symlink.

    A named tuple: made for every file of every cold scan, and compared on every reconciliation.
    """

    mtime_ns: int
    size: int
    inode: int
    device: int
    ctime_ns: int = 0  # chmod and chown change only this: an unreadable file made readable is read again

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


def _os_reason(exc: OSError) -> Reason:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return Reason.VANISHED
    if exc.errno == errno.ELOOP:
        return Reason.SYMLINK_LOOP
    if exc.errno == errno.EISDIR:
        return Reason.NOT_A_FILE
    return Reason.UNREADABLE


def signature(path: str | Path) -> Signature:
    """Stat through symlinks; ParseError when the path is not a readable regular file."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ParseError(_os_reason(exc), exc.strerror or type(exc).__name__) from None
    if not stat_module.S_ISREG(st.st_mode):
        raise ParseError(Reason.NOT_A_FILE, "not a regular file")
    return Signature(st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)


OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
PRIVATE_KEY_NAMES = frozenset({"server.key"})


def refuse_outside(path: str, root: str | None) -> None:
    """ParseError (outside_root) when `path` resolves out of `root`, or to a private key wherever it is.

    `root` None means a path the operator configured by name: followed wherever it leads, except
    to a key. Only the careful path calls this (the cold-scan fast path opens with O_NOFOLLOW and
    leaves links to it), and it resolves only when a component below the root is a link: a client
    file costs two lstat calls, not one per component from `/`.
    """
    if root is not None and os.path.basename(path).lower() not in PRIVATE_KEY_NAMES and not _links_below(path, root):
        return
    real = os.path.realpath(path)
    if os.path.basename(real).lower() in PRIVATE_KEY_NAMES:
        raise ParseError(Reason.OUTSIDE_ROOT, "resolves to a private key; never opened")
    if root is None:
        return
    base = os.path.realpath(root)
    try:
        inside = os.path.commonpath([base, real]) == base
    except ValueError:  # another drive (Windows): outside by definition
        inside = False
    if not inside:
        raise ParseError(Reason.OUTSIDE_ROOT, "a link that leads out of the watched root; not followed")


def _links_below(path: str, root: str) -> bool:
    """True when a component of `path` below `root` is a link (or `path` is not below `root` at all)."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if path.startswith(prefix) and os.pardir not in path:  # the scanner's own paths: no normalising needed
        relative = path[len(prefix):]
    else:
        try:
            relative = os.path.relpath(path, root)
        except ValueError:
            return True
    if relative == os.curdir or relative.startswith(os.pardir):
        return True
    current = root
    parts = relative.split(os.sep)
    for depth, part in enumerate(parts, start=1):
        current = os.path.join(current, part)
        folder = depth < len(parts)
        if folder and current in _LINK_FREE:
            continue
        if os.path.islink(current):
            return True
        if folder and len(_LINK_FREE) < LINK_FREE_SIZE:
            _LINK_FREE.add(current)
    return False


# Folders seen not to be links during the current scan: 2,000 group files share `data/outbox/agent`,
# and checking it once per scan instead of once per file is most of a cold scan's link checks. The
# scanner clears it when a scan or a re-read starts, so a folder swapped for a link is seen next time.
_LINK_FREE: set[str] = set()
LINK_FREE_SIZE = 65536


def forget_link_checks() -> None:
    """Start a scan afresh: every folder is checked again the first time a file below it is read."""
    _LINK_FREE.clear()


def read_capped(path: str | Path, max_bytes: int, size_hint: int = -1) -> bytes:
    """The file's bytes, refusing more than `max_bytes` without reading them all.

    `size_hint` (from the stat just made) sizes the read, so a 6 KB file costs a 6 KB buffer, and a
    file already known to be too large is not opened at all; one that grew since is read on.
    """
    if size_hint > max_bytes:
        raise ParseError(Reason.TOO_LARGE, f"over the {max_bytes}-byte cap")
    want = (size_hint if size_hint >= 0 else max_bytes) + 1
    chunks: list[bytes] = []
    got = 0
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        raise ParseError(_os_reason(exc), exc.strerror or type(exc).__name__) from None
    try:
        if not stat_module.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO or device since the stat
            raise ParseError(Reason.NOT_A_FILE, "not a regular file")
        while got <= max_bytes:
            chunk = os.read(fd, want - got if got < want else max_bytes + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise ParseError(_os_reason(exc), exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)
    if got > max_bytes:
        raise ParseError(Reason.TOO_LARGE, f"over the {max_bytes}-byte cap")
    return b"" if not chunks else chunks[0] if len(chunks) == 1 else b"".join(chunks)
