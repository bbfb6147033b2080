"""index2.xml facts: the group profile index, a second parity signal beside SyLink.xml."""

from __future__ import annotations

from dataclasses import dataclass

from sepm_exporter.sepm.reasons import only_parse_errors
from sepm_exporter.sepm.xmlsafe import DEFAULT_MAX_BYTES, local_name, parse_xml


@dataclass(frozen=True)
class Index2Facts:
    """Attributes of the first `Profile` element; empty strings where absent (seen only in forum posts)."""

    checksum: str
    serial_number: str
    last_modified: str


@only_parse_errors
def parse_index2(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Index2Facts:
    """Facts of an index2.xml; ParseError when it is not XML we can read safely."""
    root = parse_xml(data, max_bytes)
    for element in root.iter():
        if local_name(element) == "Profile":
            return Index2Facts(
                checksum=element.get("Checksum", ""),
                serial_number=element.get("SerialNumber", ""),
                last_modified=element.get("LastModifiedTime", ""),
            )
    return Index2Facts(checksum="", serial_number="", last_modified="")
