"""Policy serials: the group-id prefix and the profile time to the millisecond, as SEPM writes them."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepm_exporter.sepm.serial import MAX_SERIAL_CHARS, PolicySerial, SerialError, SerialReason, format_serial, parse_serial


def test_the_public_sample_decodes_to_its_policy_date() -> None:
    # PSSymantecSEPM's /groups sample: policySerialNumber and policyDate are the same instant.
    parsed = parse_serial("718B-09/04/2023 12:56:58 775")
    assert parsed == PolicySerial("718B", 1693832218775)
    assert parsed.seconds == 1693832218.775


def test_the_computer_sample_carries_its_group_prefix() -> None:
    # Rapid7's /computers sample: a computer of group 18175BEC... reports 1817-...
    parsed = parse_serial("1817-05/13/2020 07:00:58 109")
    assert parsed.prefix == "18175BEC0A041471455851B8A7FC6DFA"[:4]
    assert parsed.time_ms == int(dt.datetime(2020, 5, 13, 7, 0, 58, 109_000, dt.UTC).timestamp() * 1000)


def test_lower_case_prefix_and_missing_millis() -> None:
    assert parse_serial(" 718b-09/04/2023 12:56:58 ") == PolicySerial("718B", 1693832218000)


@pytest.mark.parametrize(("serial", "reason"), [
    ("", SerialReason.EMPTY),
    ("   ", SerialReason.EMPTY),
    ("718B", SerialReason.MALFORMED),
    ("-09/04/2023 12:56:58 775", SerialReason.MALFORMED),
    ("XYZW-09/04/2023 12:56:58 775", SerialReason.MALFORMED),
    ("718B-2023-09-04 12:56:58 775", SerialReason.MALFORMED),
    ("718B-09/04/2023 12:56 775", SerialReason.MALFORMED),
    ("718B-09/04/2023 12:56:58 7755", SerialReason.MALFORMED),
    ("718B-09/04/2023 12:56:58 77a", SerialReason.MALFORMED),
    ("718B-09/04/2023  12:56:58 775", SerialReason.MALFORMED),
    ("718B-٠٩/04/2023 12:56:58 775", SerialReason.MALFORMED),  # non-ASCII digits
    ("718B-" + "1" * MAX_SERIAL_CHARS, SerialReason.MALFORMED),
    ("718B-13/04/2023 12:56:58 775", SerialReason.BAD_DATE),
    ("718B-02/30/2023 12:56:58 775", SerialReason.BAD_DATE),
    ("718B-09/04/2023 24:00:00 000", SerialReason.BAD_DATE),
    ("718B-09/04/1969 12:56:58 775", SerialReason.BAD_DATE),
])
def test_bad_serials_say_why(serial: str, reason: SerialReason) -> None:
    with pytest.raises(SerialError) as caught:
        parse_serial(serial)
    assert caught.value.reason is reason


@given(st.integers(min_value=0, max_value=253402300799999), st.text("0123456789ABCDEF", min_size=4, max_size=32))
def test_format_and_parse_are_inverse(time_ms: int, group_id: str) -> None:
    assert parse_serial(format_serial(group_id, time_ms)) == PolicySerial(group_id[:4], time_ms)


@given(st.text(max_size=200))
def test_anything_parses_or_says_why(text: str) -> None:
    try:
        parsed = parse_serial(text)
    except SerialError as exc:
        assert exc.reason in SerialReason
    else:
        assert parsed.time_ms >= 0
