"""Server certificates and key history: what each SEPM serves, and when its key last changed."""

from __future__ import annotations

from sepm_exporter.judge.history import History
from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sources.inventory import Inventory

SRV = ("server", "site")

FAMILIES: tuple[Family, ...] = (
    Family("sepm_certificate_not_after_timestamp_seconds", "gauge", (*SRV, "file"),
           "When a server certificate expires (Unix time)."),
    Family("sepm_certificate_not_before_timestamp_seconds", "gauge", (*SRV, "file"),
           "When a server certificate became valid (Unix time)."),
    Family("sepm_certificate_info", "gauge",
           (*SRV, "file", "subject", "issuer", "serial", "signature_hash", "key_algorithm", "key_bits",
            "public_key_sha256"),
           "A server certificate's facts; the value is 1."),
    Family("sepm_certificate_file_certificates", "gauge", (*SRV, "file"),
           "How many certificates a server certificate file holds (a bundle has more than one; the first is the leaf)."),
    Family("sepm_server_key_changed_timestamp_seconds", "gauge", SRV,
           "When the exporter first saw the server's current public key replace an earlier one."),
    Family("sepm_server_previous_key_info", "gauge", (*SRV, "public_key_sha256", "signature_hash", "key_bits"),
           "The server key that the current one replaced; the value is 1."),
)


def samples(inventory: Inventory, history: History) -> dict[str, list[Sample]]:
    """Pure: every family of this area, from the certificates seen and the remembered keys."""
    out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES}
    for name, server in inventory.servers.items():
        site = server.config.site
        for label, observed in server.certificates.items():
            if observed.facts is None:
                continue
            leaf = observed.facts.leaf
            out["sepm_certificate_not_after_timestamp_seconds"].append(((name, site, label), leaf.not_after))
            out["sepm_certificate_not_before_timestamp_seconds"].append(((name, site, label), leaf.not_before))
            out["sepm_certificate_info"].append(
                ((name, site, label, leaf.subject, leaf.issuer, leaf.serial, leaf.signature_hash,
                  leaf.key_algorithm, str(leaf.key_bits), leaf.public_key_sha256), 1.0)
            )
            out["sepm_certificate_file_certificates"].append(((name, site, label), float(observed.facts.count)))
        entry = history.servers.get(name)
        if entry is not None and entry.changed_at is not None and entry.previous is not None:
            out["sepm_server_key_changed_timestamp_seconds"].append(((name, site), entry.changed_at))
            previous = entry.previous
            out["sepm_server_previous_key_info"].append(
                ((name, site, previous.public_key_sha256, previous.signature_hash, str(previous.key_bits)), 1.0)
            )
    return out
