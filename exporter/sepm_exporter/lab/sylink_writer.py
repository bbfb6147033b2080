"""SyLink.xml bytes as SEPM writes them: attribute spelling, 76-column base64 with `&#13;` line ends."""

from __future__ import annotations

import base64
import codecs
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr


@dataclass(frozen=True)
class SyLinkSpec:
    """What goes into one group's SyLink.xml."""

    domain_id: str
    kcs: str
    mode: str  # "pull" or "push"
    heartbeat_seconds: int
    randomization_seconds: int  # 0 turns randomization off
    site: str
    servers: tuple[tuple[str, str, int, int | None], ...]  # (priority, address, http port, https port)
    certificates: tuple[tuple[str, bytes], ...]  # (server name, DER)
    preferred_group: str


def _wrapped_base64(der: bytes) -> str:
    text = base64.b64encode(der).decode("ascii")
    return "".join(text[i : i + 76] + "&#13;\n" for i in range(0, len(text), 76))


def render(spec: SyLinkSpec, encoding: str = "utf-8", line_end: str = "\n") -> bytes:
    """Serialise; `encoding` is utf-8, utf-8-sig (with BOM), utf-16-le or utf-16-be (with BOM)."""
    heartbeat_attribute = "PushHeartbeatSeconds" if spec.mode == "push" else "PullHeartbeatSeconds"
    randomization = "1" if spec.randomization_seconds > 0 else "0"
    declared = "UTF-16" if encoding.startswith("utf-16") else "UTF-8"
    lines = [
        f'<?xml version="1.0" encoding="{declared}" standalone="no"?>',
        f'<ServerSettings DomainId={quoteattr(spec.domain_id)} NameSpace="rpc">',
        "  <CommConf>",
        f'    <AgentCommunicationSetting CommunicationMode="{spec.mode.upper()}" '
        f'{heartbeat_attribute}="{spec.heartbeat_seconds}" Kcs={quoteattr(spec.kcs)} AlwaysConnect="1" '
        f'RandomizationEnabled="{randomization}" RandomizationRange="{max(spec.randomization_seconds, 0)}" '
        'DisableDownloadProfile="0" UploadOpStateEnabled="1"/>',
        f"    <ServerList Name={quoteattr('Default Management Server List for ' + spec.site)}>",
    ]
    priorities: dict[str, list[str]] = {}
    for priority, address, http_port, https_port in spec.servers:
        https = f' HttpsPort="{https_port}"' if https_port is not None else ""
        priorities.setdefault(priority, []).append(
            f'        <Server Address={quoteattr(address)} HttpPort="{http_port}"{https} '
            'HttpsVerifyCA="0" VerifySignatures="1"/>'
        )
    for priority, servers in priorities.items():
        lines.append(f"      <ServerPriorityBlock Name={quoteattr(priority)}>")
        lines.extend(servers)
        lines.append("      </ServerPriorityBlock>")
    lines.append("    </ServerList>")
    lines.append("    <ServerCertList>")
    for name, der in spec.certificates:
        lines.append(f"      <Certificate Name={quoteattr(name)}>{_wrapped_base64(der)}</Certificate>")
    lines.append("    </ServerCertList>")
    lines.append('    <LogSetting SendingLogAllowed="1" MaxLogRecords="100"/>')
    lines.append(f"    <RegisterClient PreferredGroup={quoteattr(spec.preferred_group)} PreferredMode=\"1\"/>")
    lines.append("  </CommConf>")
    lines.append("</ServerSettings>")
    text = line_end.join(lines) + line_end
    return encode(text, encoding)


def encode(text: str, encoding: str) -> bytes:
    """Text to bytes with the BOM conventions Windows tools use."""
    if encoding == "utf-16-le":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "utf-16-be":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    return text.encode(encoding)


def render_index2(serial_number: int, checksum: str, last_modified_ms: int) -> bytes:
    """A group profile index; only the attributes seen in forum posts are known to matter."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Index>\n"
        f'  <Profile Checksum={quoteattr(checksum)} SerialNumber="{serial_number}" '
        f'LastModifiedTime="{last_modified_ms}">{escape("SyLink")}</Profile>\n'
        "</Index>\n"
    ).encode()
