"""The lab API's estate model: stranded clients miss their next heartbeat, pulled clients advance
their policy serial, replication follows `lab replicate`; time is passed in, nothing sleeps."""

from __future__ import annotations

import time

from sepm_exporter.lab import estate
from sepm_exporter.lab.api import AGENT_VERSIONS, Estate
from sepm_exporter.sepm.serial import parse_serial


def by_group(view_clients: tuple[object, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in view_clients:
        counts[row.group_id] = counts.get(row.group_id, 0) + row.online  # type: ignore[attr-defined]
    return counts


def test_stranded_clients_go_offline_at_their_next_heartbeat(lab: estate.Lab) -> None:
    model = Estate(lab.directory, "SEPM1")
    heartbeat = lab.state.groups[0].heartbeat_seconds
    assert all(row.online for row in model.view(time.time()).clients)
    lab.renew("SEPM1", new_key=True)
    assert all(row.online for row in model.view(time.time() + 2 * heartbeat).clients)  # SEPM2's old key still trusted
    lab.renew("SEPM2", new_key=True)
    renewed = time.time()
    view = model.view(renewed + 1)
    assert all(row.last_update_ms / 1000 <= renewed + 0.01 for row in view.clients)
    later = model.view(renewed + heartbeat + 1)
    assert not any(row.online for row in later.clients)
    lab.publish("SEPM1")
    lab.pull(1.0)  # clients import the new file: trusted again, checking in again
    assert all(row.online for row in model.view(time.time() + 2 * heartbeat).clients)


def test_pulled_clients_advance_their_policy_serial(lab: estate.Lab) -> None:
    model = Estate(lab.directory, "SEPM1")
    before = model.view(time.time())
    serials = {g["id"]: g["policySerialNumber"] for g in before.groups}
    assert all(row.profile_serial == serials[row.group_id] for row in before.clients)
    lab.publish("SEPM1")
    published = model.view(time.time())
    new = {g["id"]: g["policySerialNumber"] for g in published.groups}
    assert all(parse_serial(new[g]).time_ms > parse_serial(serials[g]).time_ms for g in new)
    assert not any(row.profile_serial == new[row.group_id] for row in published.clients)
    pulled = set(lab.pull(0.5))
    after = model.view(time.time())
    assert {row.name for row in after.clients if row.profile_serial == new[row.group_id]} == pulled
    # the others still report the serial of the profile they hold: the group's serial before the publish
    assert all(row.profile_serial == serials[row.group_id] for row in after.clients if row.name not in pulled)


def test_serials_are_written_as_sepm_writes_them(lab: estate.Lab) -> None:
    """Group-id prefix, then the profile time in UTC to the ms: the same instant as policyDate."""
    view = Estate(lab.directory, "SEPM1").view(time.time())
    for group in view.groups:
        parsed = parse_serial(group["policySerialNumber"])
        assert parsed.prefix == group["id"][:4]
        assert parsed.time_ms == group["policyDate"]
    assert {row.agent_version for row in view.clients} <= set(AGENT_VERSIONS)


def test_replication_status_follows_lab_replicate(lab: estate.Lab) -> None:
    model = Estate(lab.directory, "SEPM1")
    assert [p["status_code"] for p in model.view(time.time()).partners] == ["SUCCEEDED"]
    lab.renew("SEPM1", new_key=False)  # a new certificate: SEPM1's group files change
    lab.publish("SEPM1")
    assert [p["status_code"] for p in model.view(time.time()).partners] == ["FAILED_CONNECT"]
    lab.replicate("SEPM1", "SEPM2")
    (partner,) = model.view(time.time()).partners
    assert partner["status_code"] == "SUCCEEDED" and partner["name"] == "osaka"
    assert abs(partner["lastSuccessfulRunTime"] / 1000 - time.time()) < 5
