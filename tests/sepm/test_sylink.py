from __future__ import annotations

import base64
import codecs
import functools
import resource
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepm_exporter.lab import estate, hostile
from sepm_exporter.lab.sylink_writer import SyLinkSpec, render
from sepm_exporter.sepm.reasons import ParseError, Reason
from sepm_exporter.sepm.sylink import decode_embedded, parse_sylink


def spec_of(lab: estate.Lab, **changes: object) -> SyLinkSpec:
    import dataclasses

    return dataclasses.replace(lab.sylink_spec(lab.state.groups[0]), **changes)  # type: ignore[arg-type]


def test_facts_of_a_lab_sylink(lab: estate.Lab) -> None:
    group = lab.state.groups[0]
    facts = parse_sylink(lab.sylink_path("SEPM1", group.group_id).read_bytes())
    assert facts.domain_id == lab.state.domain_id
    assert facts.mode == "pull"
    assert facts.heartbeat_seconds == 300
    assert facts.randomization_seconds == 0
    assert [(s.priority, s.address, s.http_port, s.https_port) for s in facts.servers] == [
        ("Priority1", "10.0.0.111", 8014, 443),
        ("Priority2", "10.0.1.111", 8014, 443),
    ]
    assert [c.name for c in facts.certificates] == ["SEPM1", "SEPM2"]
    assert all(c.facts is not None and c.facts.signature_hash == "sha1" for c in facts.certificates)
    assert facts.preferred_group == group.name
    assert facts.problems == ()


def test_push_mode_and_randomization(lab: estate.Lab) -> None:
    data = render(spec_of(lab, mode="push", heartbeat_seconds=14400, randomization_seconds=1800))
    assert b"PushHeartbeatSeconds" in data and b"PullHeartbeatSeconds" not in data
    facts = parse_sylink(data)
    assert (facts.mode, facts.heartbeat_seconds, facts.randomization_seconds) == ("push", 14400, 1800)


def test_kcs_is_never_in_the_facts(lab: estate.Lab) -> None:
    data = lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_bytes()
    assert lab.state.kcs.encode() in data
    assert lab.state.kcs not in repr(parse_sylink(data))


def test_embedded_base64_uses_cr_entities_and_76_columns(lab: estate.Lab) -> None:
    text = lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_text(encoding="utf-8")
    body = text.split('<Certificate Name="SEPM1">')[1].split("</Certificate>")[0]
    lines = body.split("&#13;\n")
    assert all(len(line) == 76 for line in lines[:-2]) and lines[-1] == ""
    assert decode_embedded(body.replace("&#13;", "\r")) == lab.certificate_der("SEPM1")


@pytest.mark.parametrize(
    ("encoding", "line_end"),
    [("utf-8-sig", "\n"), ("utf-16-le", "\n"), ("utf-16-be", "\r\n"), ("utf-8", "\r\n")],
)
def test_canonical_hash_ignores_encoding_bom_and_line_ends(lab: estate.Lab, encoding: str, line_end: str) -> None:
    spec = spec_of(lab)
    plain = parse_sylink(render(spec))
    variant = parse_sylink(render(spec, encoding=encoding, line_end=line_end))
    assert variant.sha256 != plain.sha256
    assert variant.canonical_sha256 == plain.canonical_sha256


def test_canonical_hash_ignores_attribute_order(lab: estate.Lab) -> None:
    data = render(spec_of(lab))
    swapped = data.replace(b'AlwaysConnect="1" RandomizationEnabled="0"', b'RandomizationEnabled="0" AlwaysConnect="1"')
    assert swapped != data
    assert parse_sylink(swapped).canonical_sha256 == parse_sylink(data).canonical_sha256


def test_canonical_hash_changes_with_heartbeat_and_certificate(lab: estate.Lab) -> None:
    base = parse_sylink(render(spec_of(lab))).canonical_sha256
    assert parse_sylink(render(spec_of(lab, heartbeat_seconds=301))).canonical_sha256 != base
    lab.renew("SEPM1", new_key=False)
    assert parse_sylink(render(spec_of(lab))).canonical_sha256 != base


def test_one_broken_embedded_certificate_keeps_the_rest(lab: estate.Lab) -> None:
    spec = spec_of(lab)
    broken = (spec.certificates[0], ("SEPM2", b"\x30\x82\x00\x10garbage"))
    facts = parse_sylink(render(spec_of(lab, certificates=broken)))
    assert facts.heartbeat_seconds == 300 and len(facts.servers) == 2
    assert facts.certificates[0].facts is not None and facts.certificates[1].facts is None
    assert [p.reason for p in facts.problems] == [Reason.BAD_CERTIFICATE]
    assert "SEPM2" in facts.problems[0].detail


def test_non_base64_certificate_is_a_problem_not_a_failure(lab: estate.Lab) -> None:
    data = render(spec_of(lab)).replace(b'<Certificate Name="SEPM2">', b'<Certificate Name="SEPM2">!!!!', 1)
    facts = parse_sylink(data)
    assert [p.reason for p in facts.problems] == [Reason.BAD_CERTIFICATE]
    assert base64  # imported for readers: the wrapping is standard base64


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
def test_each_hostile_kind_gives_its_own_reason_within_100_mb(lab: estate.Lab, kind: str) -> None:
    valid = lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_bytes()
    data = hostile.payload(kind, valid)
    tracemalloc.start()
    try:
        with pytest.raises(ParseError) as caught:
            parse_sylink(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason.value == hostile.KINDS[kind]
    assert peak < 100 * 1024 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2 * 1024 * 1024  # KiB: the process stays sane


def test_hostile_reasons_are_distinct_for_the_four_named_cases(lab: estate.Lab) -> None:
    valid = lab.sylink_path("SEPM1", lab.state.groups[0].group_id).read_bytes()
    reasons = set()
    for kind in ("billion-laughs", "external-entity", "truncated", "random"):
        with pytest.raises(ParseError) as caught:
            parse_sylink(hostile.payload(kind, valid))
        reasons.add(caught.value.reason)
    assert len(reasons) == 4


def test_utf16_with_bom_is_valid(lab: estate.Lab) -> None:
    data = render(spec_of(lab), encoding="utf-16-le")
    assert data.startswith(codecs.BOM_UTF16_LE)
    assert parse_sylink(data).heartbeat_seconds == 300


def test_size_cap_is_configurable(lab: estate.Lab) -> None:
    data = render(spec_of(lab))
    with pytest.raises(ParseError) as caught:
        parse_sylink(data, max_bytes=1024)
    assert caught.value.reason is Reason.TOO_LARGE




@functools.cache
def encoded_sylink(encoding: str) -> bytes:
    """One lab SyLink.xml per encoding (CRLF for two of them), built once."""
    with tempfile.TemporaryDirectory() as folder:
        lab = estate.init(Path(folder) / "lab", groups=1, clients=0)
        return render(spec_of(lab), encoding=encoding, line_end="\r\n" if encoding.endswith(("sig", "be")) else "\n")


HALF_WRITTEN = {Reason.TRUNCATED_XML, Reason.EMPTY, Reason.BAD_ENCODING}
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be"]


@given(cut=st.floats(min_value=0.0, max_value=1.0), encoding=st.sampled_from(ENCODINGS))
@settings(max_examples=300, deadline=None)
def test_a_half_written_file_is_always_truncated_never_facts(cut: float, encoding: str) -> None:
    """A reader racing a writer sees any prefix: refused as half-written until the root element is closed."""
    data = encoded_sylink(encoding)
    prefix = data[: int(len(data) * cut)]
    closing = codecs.encode("</ServerSettings>", encoding.replace("-sig", ""))
    whole_units = not encoding.startswith("utf-16") or len(prefix) % 2 == 0
    if closing in prefix and whole_units:  # complete; a missing final newline is still a whole document
        assert parse_sylink(prefix).domain_id
        return
    with pytest.raises(ParseError) as caught:
        parse_sylink(prefix)
    assert caught.value.reason in HALF_WRITTEN, (len(prefix), caught.value.reason)
    if len(prefix) > 200 and encoding.startswith("utf-8"):
        assert caught.value.reason is Reason.TRUNCATED_XML
