"""Every metric family the exporter publishes: name, type, labels, help. The docs are tested against this."""

from __future__ import annotations

from sepm_exporter.metrics import api
from sepm_exporter.metrics.family import Family

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
    Family("sepm_sylink_info", "gauge", (*SRV, "group_id", "sha256", "canonical_sha256", "domain_id", "mode"),
           "A group's outbox SyLink.xml on a server; the value is 1."),
    Family("sepm_sylink_modified_timestamp_seconds", "gauge", (*SRV, "group_id"),
           "When a group's outbox SyLink.xml was last written (file mtime)."),
    Family("sepm_sylink_heartbeat_seconds", "gauge", (*SRV, "group_id"),
           "The heartbeat of the group's active communication mode."),
    Family("sepm_sylink_randomization_seconds", "gauge", (*SRV, "group_id"),
           "RandomizationRange when heartbeat randomization is on, else 0."),
    Family("sepm_sylink_certificate_info", "gauge", (*SRV, "group_id", "name", "public_key_sha256", "signature_hash"),
           "A certificate embedded in a group's SyLink.xml; the value is 1."),
    Family("sepm_sylink_certificate_not_after_timestamp_seconds", "gauge", (*SRV, "group_id", "name"),
           "When a certificate embedded in a group's SyLink.xml expires."),
    Family("sepm_sylink_server_key_match", "gauge", (*SRV, "group_id"),
           "1 when the server's current public key is among the keys embedded in its copy of the group file."),
    Family("sepm_sylink_replica_mismatch", "gauge", ("group_id",),
           "1 when the servers this exporter sees disagree on the group's canonical SyLink.xml."),
    Family("sepm_group_index_info", "gauge", (*SRV, "group_id", "checksum", "serial_number"),
           "A group's index2.xml profile attributes; the value is 1."),
    Family("sepm_client_sylink_info", "gauge", ("client", "group_id", "sha256", "canonical_sha256"),
           "A client's SyLink.xml; the value is 1."),
    Family("sepm_client_sylink_modified_timestamp_seconds", "gauge", ("client",),
           "When the client's SyLink.xml was last written (file mtime)."),
    Family("sepm_client_sylink_current", "gauge", ("client", "group_id"),
           "1 when the client's file equals its group's newest server-side file, 0 when it holds an older one."),
    Family("sepm_client_sylink_stale_since_timestamp_seconds", "gauge", ("client", "group_id"),
           "When the group's server-side file moved on from the version the client still holds."),
    Family("sepm_client_server_key_trusted", "gauge", ("client",),
           "1 when some key embedded in the client's file is a current server key, else 0."),
    Family("sepm_group_clients", "gauge", ("group_id", "state"),
           "Clients per group and state (current, stale, untrusted, unmatched)."),
    Family("sepm_exporter_build_info", "gauge", ("version",), "The exporter's version; the value is 1."),
    Family("sepm_exporter_root_up", "gauge", ("server", "client_root"),
           "1 while a watched root (a server tree or a client collection) can be read."),
    Family("sepm_exporter_file_error", "gauge", ("server", "client", "file", "reason"),
           "1 for each watched file that now fails, with a fixed reason."),
    Family("sepm_exporter_file_errors_total", "counter", ("reason",),
           "Files that started failing, by reason, since the exporter started."),
    Family("sepm_exporter_files", "gauge", ("kind",), "Files currently watched, by kind."),
    Family("sepm_exporter_scan_duration_seconds", "gauge", (), "How long the last reconciliation scan took."),
    Family("sepm_exporter_last_scan_timestamp_seconds", "gauge", (), "When the last reconciliation scan ended."),
    Family("sepm_exporter_events_total", "counter", ("kind",),
           "File-system events and reconciliation findings that led to a re-read, by kind."),
    Family("sepm_exporter_state_file_ok", "gauge", (),
           "1 when the state file was loaded (or absent) and last saved without error, else 0."),
    *api.FAMILIES,
)

BY_NAME = {family.name: family for family in FAMILIES}
EVENT_KINDS = ("created", "modified", "deleted", "moved", "overflow", "reconcile")
