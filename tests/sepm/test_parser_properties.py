"""Property tests, one per parser: arbitrary bytes, mutated real files and truncations raise nothing
but the parser's declared error, and no input takes long.

The real files come from the lab; the mutations from `lab.hostile.mutate` (seeded, so a failure
names its seed and replays). The budget is fixed (examples per parser); `bench/hostile.py --fuzz`
runs the same loop for as long as asked.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sepm_exporter.judge import history
from sepm_exporter.lab import estate, hostile
from sepm_exporter.runtime import Exporter
from sepm_exporter.sepm import layout
from sepm_exporter.sepm.certificate import parse_certificate_file, parse_der
from sepm_exporter.sepm.index2 import parse_index2
from sepm_exporter.sepm.reasons import ParseError
from sepm_exporter.sepm.sylink import parse_sylink
from sepm_exporter.settings.config import load_config

EXAMPLES = 150
PER_CALL = 1.0  # seconds: a valid file parses in a millisecond; nothing may take a thousand times that
BUDGET = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _real_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        lab = estate.init(Path(folder) / "lab", groups=2, clients=2)
        group = lab.state.groups[0].group_id
        exporter = Exporter(load_config(lab.config_path))
        exporter.full_scan()
        return {
            "sylink": lab.sylink_path("SEPM1", group).read_bytes(),
            "index2": lab.group_dir("SEPM1", group).joinpath(layout.INDEX2_NAME).read_bytes(),
            "pem": lab.certificate_path("SEPM1").read_bytes(),
            "der": lab.certificate_der("SEPM1"),
            "state": history.encode(exporter.history).encode("utf-8"),
        }


REAL = _real_files()


def _only_declared(parse: Callable[[bytes], Any], data: bytes, declared: type[Exception]) -> None:
    started = time.perf_counter()
    with contextlib.suppress(declared):  # the declared error is fine; any other class fails the test
        parse(data)
    spent = time.perf_counter() - started
    assert spent < PER_CALL, f"{len(data)} bytes took {spent:.2f} s"


PARSERS: dict[str, tuple[Callable[[bytes], Any], str]] = {
    "sylink": (parse_sylink, "sylink"),
    "index2": (parse_index2, "index2"),
    "certificate-pem": (parse_certificate_file, "pem"),
    "certificate-der": (parse_certificate_file, "der"),
    "der": (parse_der.__wrapped__, "der"),
}


@pytest.mark.parametrize("name", PARSERS)
@BUDGET
@given(data=st.binary(max_size=8192))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    parse, _ = PARSERS[name]
    _only_declared(parse, data, ParseError)


@pytest.mark.parametrize("name", PARSERS)
@BUDGET
@given(seed=st.integers(min_value=0, max_value=2**32), how=st.sampled_from(hostile.MUTATIONS))
def test_mutated_real_files(name: str, seed: int, how: str) -> None:
    parse, real = PARSERS[name]
    _only_declared(parse, hostile.mutate(REAL[real], seed, how), ParseError)


@pytest.mark.parametrize("name", PARSERS)
def test_every_truncation(name: str) -> None:
    parse, real = PARSERS[name]
    data = REAL[real]
    step = max(1, len(data) // 400)
    for end in range(0, len(data), step):
        _only_declared(parse, data[:end], ParseError)


# -- the state file: decode raises StateFileError only, load never raises -----------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


@BUDGET
@given(text=st.text(max_size=4096))
def test_state_file_arbitrary_text(text: str) -> None:
    _only_declared(history.decode, text, history.StateFileError)


@BUDGET
@given(value=JSON)
def test_state_file_arbitrary_json(value: object) -> None:
    _only_declared(history.decode, json.dumps({"version": history.STATE_VERSION, "servers": value, "groups": value}),
                   history.StateFileError)


@BUDGET
@given(seed=st.integers(min_value=0, max_value=2**32), how=st.sampled_from(hostile.MUTATIONS))
def test_state_file_mutated(seed: int, how: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("state") / "state.json"
    path.write_bytes(hostile.mutate(REAL["state"], seed, how))
    started = time.perf_counter()
    loaded, _problem = history.load(path)  # never raises: a problem is reported, the file set aside by the runtime
    assert isinstance(loaded, history.History)
    assert time.perf_counter() - started < PER_CALL


@pytest.mark.parametrize("text", [
    '{"version": 1, "servers": {"A": {"current": {"public_key_sha256": "x", "signature_hash": "sha1", '
    '"key_bits": 1e400}}}}',
    "[" * 100_000 + "]" * 100_000,
    '{"version": 1, "servers": {}, "groups": {"g": [{"canonical_sha256": "x", "first_seen": ' + "9" * 5000 + "}]}}",
    '{"version": 1, "servers": {"A": {"changed_at": NaN}}}',
])
def test_state_file_shapes_from_the_attack(text: str) -> None:
    """The three shapes that crashed every start: an infinite float, 100,000 brackets, a 5,000-digit integer."""
    with pytest.raises(history.StateFileError):
        history.decode(text)
