"""What the TLS probes saw, as samples: up, the served leaf, and whether its key is the one on disk."""

from __future__ import annotations

from sepm_exporter.judge.served import disk_keys, served_key_match
from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sources.probes import REASONS, ProbeResult

EP = ("server", "endpoint")

FAMILIES: tuple[Family, ...] = (
    Family("sepm_probe_up", "gauge", EP, "1 when the TLS probe of that endpoint completed a handshake and read a certificate."),
    Family("sepm_probe_error", "gauge", (*EP, "reason"),
           "1 for a failing probe, with why (timeout, refused, unreachable, dns, tls_error, no_certificate, bad_certificate)."),
    Family("sepm_probe_duration_seconds", "gauge", EP, "How long the last probe of that endpoint took."),
    Family("sepm_probe_certificate_not_after_timestamp_seconds", "gauge", EP,
           "When the leaf certificate the endpoint serves expires (Unix time)."),
    Family("sepm_probe_certificate_info", "gauge",
           (*EP, "subject", "serial", "signature_hash", "key_algorithm", "key_bits", "public_key_sha256"),
           "The served leaf certificate's facts; the value is 1."),
    Family("sepm_served_certificate_key_match", "gauge", EP,
           "1 when the served leaf's key is the current key of the server's server.crt on disk, else 0."),
    Family("sepm_probe_certificate_verified", "gauge", EP,
           "1 when a certificate of the endpoint's ca_file issued the served leaf and it is within its validity (only with ca_file)."),
)
NAMES = frozenset(f.name for f in FAMILIES)
__all__ = ["FAMILIES", "NAMES", "disk_keys", "probe_families"]


def probe_families(results: list[ProbeResult], keys: dict[str, str]) -> dict[str, list[Sample]]:
    """Every probe family, complete: an endpoint no longer configured disappears with the next round."""
    out: dict[str, list[Sample]] = {name: [] for name in NAMES}
    for result in sorted(results, key=lambda r: (r.server, r.endpoint)):
        ids = (result.server, result.endpoint)
        out["sepm_probe_up"].append((ids, 1.0 if result.up else 0.0))
        out["sepm_probe_duration_seconds"].append((ids, round(result.duration, 6)))
        if result.reason in REASONS:
            out["sepm_probe_error"].append(((*ids, result.reason), 1.0))
        leaf = result.leaf
        if leaf is not None:
            out["sepm_probe_certificate_not_after_timestamp_seconds"].append((ids, leaf.not_after))
            out["sepm_probe_certificate_info"].append(
                ((*ids, leaf.subject, leaf.serial, leaf.signature_hash, leaf.key_algorithm, str(leaf.key_bits),
                  leaf.public_key_sha256), 1.0)
            )
        match = served_key_match(result, keys)
        if match is not None:
            out["sepm_served_certificate_key_match"].append((ids, 1.0 if match else 0.0))
        if result.verified is not None:
            out["sepm_probe_certificate_verified"].append((ids, 1.0 if result.verified else 0.0))
    return out
