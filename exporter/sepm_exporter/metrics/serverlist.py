"""The management servers each group file lists: what clients of that group will try, in order."""

from __future__ import annotations

from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sepm.sylink import ServerEntry
from sepm_exporter.sources.inventory import Inventory

FAMILIES: tuple[Family, ...] = (
    Family("sepm_sylink_server_info", "gauge",
           ("server", "site", "group_id", "address", "priority", "http_port", "https_port", "verify_signatures"),
           "A management server listed in a group's SyLink.xml (ServerList); the value is 1."),
)


def _port(value: int | None) -> str:
    return "" if value is None else str(value)


def _flag(value: bool | None) -> str:
    return "" if value is None else "1" if value else "0"


def entry_labels(entry: ServerEntry) -> tuple[str, str, str, str, str]:
    """(address, priority, http_port, https_port, verify_signatures) as label values."""
    return (entry.address, entry.priority, _port(entry.http_port), _port(entry.https_port), _flag(entry.verify_signatures))


def samples(inventory: Inventory) -> dict[str, list[Sample]]:
    """One series per listed server of each group file on each watched server (duplicates merged)."""
    out: list[Sample] = []
    for name, server in inventory.servers.items():
        site = server.config.site
        for group_id, files in sorted(server.groups.items()):
            facts = files.sylink.facts
            if facts is None:
                continue
            for labels in dict.fromkeys(entry_labels(e) for e in facts.servers):
                out.append(((name, site, group_id, *labels), 1.0))
    return {"sepm_sylink_server_info": out}
