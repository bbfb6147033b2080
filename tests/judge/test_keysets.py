"""The key set a computer holds, from its policy serial alone: each rule, its certainty, and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepm_exporter.judge.clients import ClientStatus, trust_basis
from sepm_exporter.judge.keysets import CertificateTime, GroupNow, Rule, UnknownReason, infer
from sepm_exporter.sepm.serial import PolicySerial

GROUP = "B89066FBAB697A5B8A573C047E97D85C"
OLD, NEW = "old-key", "new-key"
RENEWED = 2_000.0  # both servers' new certificates: notBefore
NOW = 10_000.0
CERTS = (CertificateTime("SEPM1", NEW + "1", RENEWED), CertificateTime("SEPM2", NEW + "2", RENEWED))
BASIS = trust_basis({"SEPM1": NEW + "1", "SEPM2": NEW + "2"}, {"SEPM1": OLD + "1", "SEPM2": OLD + "2"})
CURRENT = PolicySerial("B890", 3_000_000)  # the profile published after the renewal
BEFORE = PolicySerial("B890", 1_000_000)  # the profile before it
NOW_GROUP = GroupNow(CURRENT, frozenset({NEW + "1", NEW + "2"}))


def judge(serial: PolicySerial | None, reason: str = "", group_id: str = GROUP, group: GroupNow | None = NOW_GROUP,
          remembered: dict[int, frozenset[str]] | None = None, certs: tuple[CertificateTime, ...] = CERTS):
    return infer(group_id, serial, reason, group, remembered or {}, certs, BASIS, NOW)


def test_rule_1_the_current_serial_holds_the_current_outbox_file() -> None:
    verdict = judge(CURRENT)
    assert (verdict.rule, verdict.trusted, verdict.status) == (Rule.CURRENT, True, ClientStatus.CURRENT)
    assert verdict.keys == NOW_GROUP.keys and verdict.profile_time == 3_000.0
    # the current file itself embeds only replaced keys (published before the renewal, not since)
    stale_file = judge(CURRENT, group=GroupNow(CURRENT, frozenset({OLD + "1", OLD + "2"})))
    assert (stale_file.rule, stale_file.trusted, stale_file.status) == (Rule.CURRENT, False, ClientStatus.UNTRUSTED)
    unwatched = judge(CURRENT, group=GroupNow(CURRENT, None))
    assert (unwatched.rule, unwatched.reason) == (Rule.UNKNOWN, UnknownReason.NO_OUTBOX)


def test_rule_2_a_remembered_serial_holds_that_files_keys() -> None:
    remembered = {1_000_000: frozenset({OLD + "1", OLD + "2"})}
    verdict = judge(BEFORE, remembered=remembered)
    assert (verdict.rule, verdict.trusted, verdict.status) == (Rule.REMEMBERED, False, ClientStatus.UNTRUSTED)
    kept_key = judge(BEFORE, remembered={1_000_000: frozenset({NEW + "1", OLD + "2"})})
    assert (kept_key.rule, kept_key.trusted, kept_key.status) == (Rule.REMEMBERED, True, ClientStatus.STALE)
    # a key no watched server ever had: it may be a server this exporter does not see
    foreign = judge(BEFORE, remembered={1_000_000: frozenset({"someone-else"})})
    assert (foreign.trusted, foreign.status) == (None, ClientStatus.STALE)


def test_rule_3_a_profile_older_than_every_certificate_cannot_hold_their_keys() -> None:
    verdict = judge(BEFORE)  # no history at all: a fresh check
    assert (verdict.rule, verdict.trusted, verdict.status) == (Rule.OLDER_THAN_CERTIFICATE, False, ClientStatus.UNTRUSTED)
    assert verdict.excluded == {NEW + "1", NEW + "2"}


def test_rule_3_one_server_renewed_leaves_the_other_possible() -> None:
    certs = (CertificateTime("SEPM1", NEW + "1", RENEWED), CertificateTime("SEPM2", NEW + "2", 500.0))
    verdict = judge(BEFORE, certs=certs)
    assert (verdict.rule, verdict.trusted, verdict.status) == (Rule.OLDER_THAN_CERTIFICATE, None, ClientStatus.UNKNOWN)
    assert verdict.excluded == {NEW + "1"}


def test_rule_3_spares_a_key_seen_in_an_earlier_profile() -> None:
    """A renewal that kept the key: the certificate is new, the key is not, so the old profile may hold it."""
    remembered = {500_000: frozenset({NEW + "1", NEW + "2"})}
    verdict = judge(BEFORE, remembered=remembered)
    assert verdict.trusted is None and verdict.rule is Rule.UNKNOWN and verdict.reason is UnknownReason.NOT_SEEN


def test_rule_4_an_unseen_profile_after_the_renewal_is_unknown() -> None:
    verdict = judge(PolicySerial("B890", 2_500_000))
    assert (verdict.rule, verdict.trusted, verdict.reason) == (Rule.UNKNOWN, None, UnknownReason.NOT_SEEN)


@pytest.mark.parametrize(("serial", "reason", "group_id", "group", "expected"), [
    (None, "malformed", GROUP, NOW_GROUP, UnknownReason.SERIAL_MALFORMED),
    (None, "empty", GROUP, NOW_GROUP, UnknownReason.SERIAL_EMPTY),
    (None, "bad_date", GROUP, NOW_GROUP, UnknownReason.SERIAL_BAD_DATE),
    (None, "anything else", GROUP, NOW_GROUP, UnknownReason.SERIAL_MALFORMED),
    (PolicySerial("B890", int(NOW * 1000) + 3_600_000), "", GROUP, NOW_GROUP, UnknownReason.PROFILE_IN_FUTURE),
    (CURRENT, "", "", NOW_GROUP, UnknownReason.NO_GROUP),
    (PolicySerial("B890", 2_500_000), "", GROUP, None, UnknownReason.GROUP_UNKNOWN),
    (PolicySerial("1817", 2_500_000), "", GROUP, NOW_GROUP, UnknownReason.OTHER_GROUP_PROFILE),
])
def test_bad_input_is_unknown_with_a_reason(serial: PolicySerial | None, reason: str, group_id: str,
                                            group: GroupNow | None, expected: UnknownReason) -> None:
    verdict = judge(serial, reason, group_id, group)
    assert (verdict.rule, verdict.trusted, verdict.status, verdict.reason) == (
        Rule.UNKNOWN, None, ClientStatus.UNKNOWN, expected)


def test_a_future_profile_is_never_called_untrusted_even_before_certificates() -> None:
    # far in the future: would be "after every notBefore" anyway; the point is no verdict at all
    verdict = judge(PolicySerial("B890", 99_999_999_999))
    assert verdict.trusted is None and verdict.reason is UnknownReason.PROFILE_IN_FUTURE


def test_no_watched_key_means_no_untrusted() -> None:
    verdict = infer(GROUP, BEFORE, "", NOW_GROUP, {}, CERTS, trust_basis({}), NOW)
    assert verdict.trusted is None


@given(st.one_of(st.none(), st.builds(PolicySerial, st.sampled_from(["B890", "1817"]), st.integers(0, 2**45))),
       st.sampled_from(["", GROUP]), st.booleans(),
       st.dictionaries(st.integers(0, 2**45), st.frozensets(st.sampled_from([OLD + "1", NEW + "1", NEW + "2", "x"]))))
def test_untrusted_only_when_no_current_key_can_be_held(serial: PolicySerial | None, group_id: str, watched: bool,
                                                       remembered: dict[int, frozenset[str]]) -> None:
    verdict = judge(serial, "malformed", group_id, NOW_GROUP if watched else None, remembered)
    if verdict.trusted is False:
        held = verdict.keys if verdict.keys is not None else frozenset(BASIS.current) - verdict.excluded
        assert not held & BASIS.current
    assert (verdict.status is ClientStatus.UNTRUSTED) == (verdict.trusted is False)


def test_rule_3_calls_nobody_untrusted_while_older_profiles_still_connect() -> None:
    """A keep-key renewal seen with no history: a computer on a profile older than every new certificate has
    checked in since, which it could not have done had every key changed. Unknown, never untrusted; and
    which server kept its key is not claimed (one partner renewed keeping it, the other with a new one)."""
    from sepm_exporter.judge.keysets import CHECK_IN_GRACE, old_profiles_connect

    after = RENEWED + CHECK_IN_GRACE + 1
    assert old_profiles_connect(CERTS, [(BEFORE.seconds, after)]) is True
    verdict = infer(GROUP, BEFORE, "", NOW_GROUP, {}, CERTS, BASIS, NOW, True)
    assert (verdict.rule, verdict.trusted, verdict.status, verdict.reason) == (
        Rule.OLDER_THAN_CERTIFICATE, None, ClientStatus.UNKNOWN, UnknownReason.OLD_PROFILES_CONNECT)
    assert judge(BEFORE).status is ClientStatus.UNTRUSTED  # without that sighting: the new-key outage
    # what shows nothing: a check-in before the certificates (or within the grace), a profile made after them,
    # a check-in after one partner's certificate only
    assert old_profiles_connect(CERTS, [(BEFORE.seconds, RENEWED - 5), (BEFORE.seconds, RENEWED + CHECK_IN_GRACE - 1)]) is False
    assert old_profiles_connect(CERTS, [(CURRENT.seconds, after)]) is False
    assert old_profiles_connect((), [(BEFORE.seconds, after)]) is False
    later = (CertificateTime("SEPM1", NEW + "1", RENEWED), CertificateTime("SEPM2", NEW + "2", after + 10))
    assert old_profiles_connect(later, [(BEFORE.seconds, after)]) is False
