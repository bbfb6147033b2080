"""The API docs are a contract too: every poll error reason has its row, and no more."""

from __future__ import annotations

import re
from pathlib import Path

from sepm_exporter.sepm.rest import ApiReason

DOCS = Path(__file__).parent.parent / "docs"


def test_api_reason_table_matches_the_enum() -> None:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    section = text[text.index("### API error reasons") :]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M)) == {r.value for r in ApiReason}
    runbook = (DOCS / "runbooks" / "SEPMAPIDown.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `([a-z_]+)` \|", runbook, re.M)) == {r.value for r in ApiReason}


def test_every_api_config_key_is_documented() -> None:
    from sepm_exporter.settings.config import _API_KEYS

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `servers\[\]\.api\.([a-z_]+)` \|", text, re.M)) == _API_KEYS
