"""Where SEPM keeps things below its install root: one place, shared by the exporter and the lab.

Kept as path parts (not strings with separators) so the same knowledge serves a Windows server
and a Linux host that mounts its share.
"""

from __future__ import annotations

import re
from pathlib import PurePath, PureWindowsPath

SERVER_CERTIFICATE: tuple[str, ...] = ("apache", "conf", "ssl", "server.crt")
SERVER_PRIVATE_KEY: tuple[str, ...] = ("apache", "conf", "ssl", "server.key")
KEYSTORE: tuple[str, ...] = ("tomcat", "etc", "keystore.jks")  # Tomcat's copy (8443, 8446)
OUTBOX_AGENT: tuple[str, ...] = ("data", "outbox", "agent")
SYLINK_NAME = "SyLink.xml"
INDEX2_NAME = "index2.xml"

DEFAULT_WINDOWS_ROOTS: tuple[PureWindowsPath, ...] = (
    PureWindowsPath(r"C:\Program Files (x86)\Symantec\Symantec Endpoint Protection Manager"),
    PureWindowsPath(r"C:\Program Files\Symantec\Symantec Endpoint Protection Manager"),
)

_GROUP_ID = re.compile(r"[0-9A-Fa-f]{32}")


def is_group_id(name: str) -> bool:
    """Group folders are named by a 32-hex-digit ID; anything else in the outbox is not a group."""
    return _GROUP_ID.fullmatch(name) is not None


def relative_label(path: PurePath, root: PurePath) -> str:
    """The `file` label: the path below its watched root, `/`-separated whatever the platform."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return "/".join(parts)
