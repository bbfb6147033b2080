"""Decoding SEPM REST answers into facts: pure, so every shape is tested without a server.

Items come from the lab's own API renderers (`lab.api.computer_json`), so the lab and the decoder
are held to the same documented field names.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepm_exporter.lab.api import ClientRow, computer_json
from sepm_exporter.sepm.rest import (
    AGE_BUCKETS,
    Computer,
    Group,
    ShapeError,
    Tally,
    decode_computer,
    decode_database,
    decode_group,
    decode_online,
    decode_page,
    decode_replication,
    decode_token,
    policy_time_ms,
)

GROUP = "b89066fbab697a5b8a573c047e97d85c"
SERIAL = "718B-09/04/2023 12:56:58 775"


def computer(name: str = "WS-1", online: bool = True, last_ms: int = 1_000_000, serial: str = SERIAL) -> dict[str, Any]:
    return computer_json(ClientRow(name, GROUP, online, last_ms, serial), "My Company\\G", "D", "SEPM1", "tokyo")


def test_token_keeps_its_lifetime_and_hides_in_repr() -> None:
    token = decode_token({"token": "abc.def", "tokenExpiration": 43200, "adminId": "1"})
    assert token.lifetime_seconds == 43200
    assert "abc.def" not in repr(token)
    assert decode_token({"token": "t"}).lifetime_seconds == 3600  # no lifetime: the documented default


@pytest.mark.parametrize("doc", [None, [], {"tokenExpiration": 1}, {"token": ""}, {"token": 5}])
def test_token_shape_errors(doc: Any) -> None:
    with pytest.raises(ShapeError):
        decode_token(doc)


def test_computer_fields_relied_on() -> None:
    item = computer(online=False, last_ms=1_500)
    facts = decode_computer(item)
    assert facts == Computer(group_id=GROUP.upper(), online=False, last_update=1.5, profile_serial=SERIAL,
                             name="WS-1", unique_id=item["uniqueId"], agent_version=item["agentVersion"])
    assert decode_computer({"computerName": "x"}) == Computer("", None, None, "", "x")
    del item["agentVersion"]  # the checked path reads the same fields
    assert decode_computer(item) == facts._replace(agent_version="")


@pytest.mark.parametrize("item", [{"group": "G"}, {"onlineStatus": "1"}, {"lastUpdateTime": float("inf")},
                                   {"lastUpdateTime": True}, {"profileSerialNo": 1}, {"computerName": 7},
                                   {"uniqueId": []}, {"agentVersion": 14.2}, "x"])
def test_computer_shape_errors(item: Any) -> None:
    with pytest.raises(ShapeError):
        decode_computer(item)


def test_group_path_and_serial() -> None:
    assert decode_group({"id": GROUP, "name": "G", "fullPathName": "My Company\\G", "policySerialNumber": SERIAL}) == Group(
        GROUP.upper(), "My Company\\G", SERIAL)
    assert decode_group({"id": GROUP, "name": "My Company\\G"}).path == "My Company\\G"  # fullPathName absent
    with pytest.raises(ShapeError):
        decode_group({"name": "no id"})


def test_page_envelope() -> None:
    assert decode_page({"content": [1, 2], "lastPage": False}, "/x") == ([1, 2], False)
    assert decode_page({"content": None, "lastPage": True}, "/x") == ([], True)
    for bad in ({"content": {}, "lastPage": True}, {"content": []}, [], "<html>"):
        with pytest.raises(ShapeError):
            decode_page(bad, "/x")


def test_online_status_ignores_case() -> None:
    doc = {"lastUpdated": 1, "clientCountStatsList": [{"status": "ONLINE", "clientsCount": 212},
                                                      {"status": "Offline", "clientsCount": 48}]}
    assert decode_online(doc) == {"online": 212, "offline": 48}
    with pytest.raises(ShapeError):
        decode_online({"lastUpdated": 1})


def test_replication_object_array_or_nothing() -> None:
    partner = {"id": "P", "name": "osaka", "location": "NA", "lastRunTime": 1, "lastSuccessfulRunTime": 2000,
               "nextRunTime": 3, "status_code": "succeeded"}
    one = decode_replication({"replicationStatus": {"id": "S", "siteName": "tokyo", "replicationPartnerStatusList": [partner]}})
    assert [(p.name, p.status, p.last_success) for p in one] == [("osaka", "SUCCEEDED", 2.0)]
    many = decode_replication({"replicationStatus": [{"replicationPartnerStatusList": [partner]}, {}]})
    assert len(many) == 1
    assert decode_replication({}) == ()
    never = {"replicationStatus": {"replicationPartnerStatusList": [{**partner, "lastSuccessfulRunTime": 0}]}}
    assert decode_replication(never)[0].last_success is None


def test_database_certificate() -> None:
    assert decode_database({"dbTLSRootCertificate": " PEM \n"}) == "PEM"
    assert decode_database({"name": "sem5"}) == ""


@pytest.mark.parametrize(("serial", "date", "expected"), [
    (SERIAL, None, 1693832218775),  # the serial's own time
    (SERIAL, 1, 1693832218775),  # the serial wins over policyDate
    ("", 1693832218775, 1693832218775),  # no serial: policyDate
    ("zz-1", None, None), ("zz-1", 0, None), ("F" * 40 + "-x", -5, None),
])
def test_policy_time(serial: str, date: int | None, expected: int | None) -> None:
    assert policy_time_ms(Group("G", "G", serial, date)) == expected


def test_group_keeps_policy_date() -> None:
    assert decode_group({"id": GROUP, "policySerialNumber": SERIAL, "policyDate": 1693832218775}).policy_date_ms == 1693832218775
    with pytest.raises(ShapeError):
        decode_group({"id": GROUP, "policyDate": "yesterday"})


def test_tally_counts_readiness_and_ages() -> None:
    groups = [Group(GROUP.upper(), "My Company\\G", SERIAL), Group("EMPTY", "My Company\\E", "")]
    tally = Tally(groups, now=10_000.0)
    tally.add(decode_computer(computer("a", True, 9_995_000)))  # 5 s ago, current policy
    tally.add(decode_computer(computer("b", False, 9_000_000, serial="0001-old")))  # 1,000 s ago, behind
    tally.add(Computer("ORPHAN", True, None, ""))  # a group /groups did not name
    by_id = {s.group_id: s for s in tally.summaries()}
    group = by_id[GROUP.upper()]
    assert (group.online, group.offline, group.on_current_policy, group.age_count) == (1, 1, 1, 2)
    assert group.age_sum == pytest.approx(1005.0)
    assert group.age_buckets[0] == 1 and group.age_buckets[AGE_BUCKETS.index(1800)] == 2
    assert by_id["EMPTY"].online == by_id["EMPTY"].offline == 0
    assert by_id["ORPHAN"].path == "" and by_id["ORPHAN"].online == 1


@given(st.lists(st.tuples(st.booleans(), st.floats(min_value=0, max_value=1e8)), max_size=50))
def test_tally_buckets_are_cumulative_and_bounded(computers: list[tuple[bool, float]]) -> None:
    tally = Tally([Group("G", "G", "S")], now=1e8)
    for online, when in computers:
        tally.add(Computer("G", online, when, "S"))
    (summary,) = tally.summaries()
    assert list(summary.age_buckets) == sorted(summary.age_buckets)
    assert summary.age_buckets[-1] <= summary.age_count == len(computers)
    assert summary.online + summary.offline == summary.on_current_policy == len(computers)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["content", "lastPage", "group", "id", "onlineStatus", "lastUpdateTime", "profileSerialNo",
                         "token", "tokenExpiration", "replicationStatus", "replicationPartnerStatusList", "status_code",
                         "clientCountStatsList", "status", "clientsCount", "dbTLSRootCertificate", "name"]),
        inner, max_size=6),
    max_leaves=20,
)


@given(JSON)
def test_any_json_decodes_or_is_a_shape_error(doc: Any) -> None:
    """Whatever a server sends, a decoder answers with facts or ShapeError, never another exception."""
    for decode in (decode_token, decode_computer, decode_group, decode_online, decode_replication, decode_database,
                   lambda d: decode_page(d, "/x")):
        with contextlib.suppress(ShapeError):
            decode(doc)
