"""The docs are a contract too: every metric, reason and flag in the code has its row, and no more."""

from __future__ import annotations

import re
from pathlib import Path

from sepm_exporter.cli import build_parser
from sepm_exporter.metrics.catalog import FAMILIES
from sepm_exporter.sepm.reasons import Reason

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
DOCS = Path(__file__).parent.parent / "docs"
METRICS = (DOCS / "metrics.md").read_text(encoding="utf-8")
SPEC = Path(__file__).parent.parent.parent / "shared" / "spec" / "metrics.md"


def _section(title: str, text: str = README) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_metric_table_matches_the_catalog() -> None:
    rows = re.findall(r"^\| `(sepm_[a-z_]+)` \| (gauge|counter|histogram) \| ([^|]*) \|", METRICS, re.M)
    documented = {name: (kind, tuple(re.findall(r"`([a-z0-9_]+)`", labels))) for name, kind, labels in rows}
    in_code = {f.name: (f.type, f.labels) for f in FAMILIES}
    assert documented == in_code


def test_contract_families_are_all_published() -> None:
    if not SPEC.exists():
        return
    contract = set(re.findall(r"`(sepm_[a-z_]+)(?:\{|`)", SPEC.read_text(encoding="utf-8")))
    assert contract - {f.name for f in FAMILIES} == set()


def test_reason_table_matches_the_enum() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", _section("## Error reasons", METRICS), re.M))
    assert documented == {r.value for r in Reason}


def test_every_serve_flag_is_documented() -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = {o for a in serve._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    documented = set(re.findall(r"^\| `(--[a-z.-]+)` \|", _section("## Flags"), re.M))
    assert flags == documented
