"""The REST API's families: declared here and filled from the pollers' states, nothing else.

The database TLS certificate from /admin/database goes out through the existing
`sepm_certificate_*` families (file `api:/admin/database`), which the file side renders: those
samples are handed to `Exporter.add_server_samples` (see `certificate_families`), not published here.
"""

from __future__ import annotations

from collections.abc import Iterable

from sepm_exporter.metrics.exposition import format_value
from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sepm.rest import AGE_BUCKETS, KNOWN_REPLICATION_STATUSES, ApiReason
from sepm_exporter.sources.api import ApiState

DATABASE_FILE = "api:/admin/database"
SOURCE = "api"

FAMILIES: tuple[Family, ...] = (
    Family("sepm_api_up", "gauge", ("server",), "1 when the last REST API poll of the server succeeded, else 0."),
    Family("sepm_api_last_success_timestamp_seconds", "gauge", ("server",),
           "When the last REST API poll of the server succeeded (Unix time); the figures below are from then."),
    Family("sepm_api_request_errors_total", "counter", ("server", "reason"),
           "Failed REST API polls by reason, since the exporter started."),
    Family("sepm_api_clients", "gauge", ("server", "status"),
           "Clients by online status, as /stats/client/onlinestatus counts them."),
    Family("sepm_api_group_clients", "gauge", ("server", "group_id", "status"),
           "Clients of a group by onlineStatus (online, offline), from /computers."),
    Family("sepm_api_group_info", "gauge", ("server", "group_id", "group"),
           "A group's full path from /groups; the value is 1. group_id joins the file side's group_id."),
    Family("sepm_api_group_policy_timestamp_seconds", "gauge", ("server", "group_id"),
           "When the group's current communication profile was made (Unix time to the ms): the time in its "
           "policySerialNumber, else policyDate."),
    Family("sepm_api_group_policy_serial", "gauge", ("server", "group_id"),
           "Deprecated, kept for the metrics contract: the hex part before the dash of the group's policySerialNumber, "
           "which is the group id's first four hex digits, a constant. Use sepm_api_group_policy_timestamp_seconds."),
    Family("sepm_api_group_clients_on_current_policy", "gauge", ("server", "group_id"),
           "Clients whose profileSerialNo equals their group's policySerialNumber (KB 187099 readiness)."),
    Family("sepm_api_clients_last_checkin_age_seconds", "histogram", ("server", "group_id", "le"),
           "Seconds since each client of the group last updated its status (lastUpdateTime), as of the poll."),
    Family("sepm_replication_partner_status", "gauge", ("server", "partner", "status"),
           "1 on the replication partner's current status_code, 0 on the other known codes."),
    Family("sepm_replication_last_success_timestamp_seconds", "gauge", ("server", "partner"),
           "When replication with the partner last succeeded (lastSuccessfulRunTime, Unix time)."),
    Family("sepm_api_duplicate_items", "gauge", ("server", "listing"),
           "Items of the last good poll's listing that repeated one already listed: skipped, never counted twice."),
)
LISTINGS = ("groups", "computers")

_LE = (*(format_value(float(bound)) for bound in AGE_BUCKETS), "+Inf")


def serial_prefix(serial: str) -> int | None:
    """The deprecated family's value: the serial's leading hex digits (1 to 8 of them, before the dash)."""
    head, dash, _ = serial.partition("-")
    if not dash or not 0 < len(head) <= 8 or any(c not in "0123456789abcdefABCDEF" for c in head):
        return None
    return int(head, 16)


def families(states: Iterable[ApiState]) -> dict[str, list[Sample]]:
    """Every API family for every server; figures of the last good poll stay while a server is down."""
    out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES}
    for state in sorted(states, key=lambda s: s.server):
        server = state.server
        out["sepm_api_up"].append(((server,), 1.0 if state.up else 0.0))
        if state.last_success is not None:
            out["sepm_api_last_success_timestamp_seconds"].append(((server,), state.last_success))
        for reason in ApiReason:
            out["sepm_api_request_errors_total"].append(((server, reason.value), float(state.errors.get(reason.value, 0))))
        snapshot = state.snapshot
        if snapshot is None:
            continue
        for listing in LISTINGS:
            out["sepm_api_duplicate_items"].append(((server, listing), float(snapshot.duplicates.get(listing, 0))))
        for status, count in sorted(snapshot.totals.items()):
            out["sepm_api_clients"].append(((server, status), float(count)))
        for group in snapshot.groups:
            ids = (server, group.group_id)
            out["sepm_api_group_clients"].append(((*ids, "online"), float(group.online)))
            out["sepm_api_group_clients"].append(((*ids, "offline"), float(group.offline)))
            if group.path:
                out["sepm_api_group_info"].append(((*ids, group.path), 1.0))
            if group.policy_time is not None:
                out["sepm_api_group_policy_timestamp_seconds"].append((ids, group.policy_time))
            prefix = serial_prefix(group.policy_serial)
            if prefix is not None:
                out["sepm_api_group_policy_serial"].append((ids, float(prefix)))
            out["sepm_api_group_clients_on_current_policy"].append((ids, float(group.on_current_policy)))
            histogram = out["sepm_api_clients_last_checkin_age_seconds"]
            for le, count in zip(_LE, (*group.age_buckets, group.age_count), strict=True):
                histogram.append(((*ids, le), float(count)))
            histogram.append(((*ids, "sum"), group.age_sum))
            histogram.append(((*ids, "count"), float(group.age_count)))
        for partner in sorted(snapshot.partners, key=lambda p: p.name):
            codes = KNOWN_REPLICATION_STATUSES if partner.status in KNOWN_REPLICATION_STATUSES else (
                *KNOWN_REPLICATION_STATUSES, partner.status)
            for code in codes:
                out["sepm_replication_partner_status"].append(((server, partner.name, code), 1.0 if code == partner.status else 0.0))
            if partner.last_success is not None:
                out["sepm_replication_last_success_timestamp_seconds"].append(((server, partner.name), partner.last_success))
    return out


def certificate_families(states: Iterable[ApiState]) -> dict[str, list[Sample]]:
    """The database TLS root certificate of each server, in the file side's certificate families."""
    out: dict[str, list[Sample]] = {
        "sepm_certificate_not_after_timestamp_seconds": [],
        "sepm_certificate_not_before_timestamp_seconds": [],
        "sepm_certificate_info": [],
        "sepm_certificate_file_certificates": [],
    }
    for state in sorted(states, key=lambda s: s.server):
        found = state.database_certificate
        if found is None:
            continue
        leaf = found.leaf
        ids = (state.server, state.site, DATABASE_FILE)
        out["sepm_certificate_not_after_timestamp_seconds"].append((ids, leaf.not_after))
        out["sepm_certificate_not_before_timestamp_seconds"].append((ids, leaf.not_before))
        out["sepm_certificate_info"].append(((*ids, leaf.subject, leaf.issuer, leaf.serial, leaf.signature_hash,
                                              leaf.key_algorithm, str(leaf.key_bits), leaf.public_key_sha256), 1.0))
        out["sepm_certificate_file_certificates"].append((ids, float(found.count)))
    return out
