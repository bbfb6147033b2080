"""Reading one watched file: the single place where OS errors become typed reasons.

`stat` first (cheap, and it tells a renamed-in file from the same file); read with a cap so a
64 MB file on a share never reaches the parser.
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
    return Signature(mtime_ns=st.st_mtime_ns, size=st.st_size, inode=st.st_ino, device=st.st_dev)


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
        with open(path, "rb", buffering=0) as handle:
            while got <= max_bytes:
                chunk = handle.read(want - got if got < want else max_bytes + 1 - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
    except OSError as exc:
        raise ParseError(_os_reason(exc), exc.strerror or type(exc).__name__) from None
    if got > max_bytes:
        raise ParseError(Reason.TOO_LARGE, f"over the {max_bytes}-byte cap")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
