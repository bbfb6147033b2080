"""The Prometheus text format, written by hand so a scrape only joins bytes.

Label sets are de-duplicated here, as a last line of defence: one duplicate series makes
Prometheus reject the whole scrape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sepm_exporter.catalog import Family

Sample = tuple[tuple[str, ...], float]


def escape_label(value: str) -> str:
    """Backslash, double quote and newline are the three characters the format escapes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Go-compatible spellings for the special values; repr keeps full precision for the rest."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_family(family: Family, samples: Iterable[Sample]) -> str:
    """HELP, TYPE and one line per unique label set (first wins)."""
    lines = [f"# HELP {family.name} {_escape_help(family.help)}", f"# TYPE {family.name} {family.type}"]
    seen: set[tuple[str, ...]] = set()
    name = family.name
    for values, value in samples:
        if values in seen:
            continue
        seen.add(values)
        pairs = ",".join(
            f'{label}="{escape_label(v)}"' for label, v in zip(family.labels, values, strict=True) if v != ""
        )
        suffix = "_total" if family.type == "counter" and not name.endswith("_total") else ""
        series = f"{name}{suffix}{{{pairs}}}" if pairs else f"{name}{suffix}"
        lines.append(f"{series} {format_value(value)}")
    return "\n".join(lines) + "\n"


def render(families: Iterable[tuple[Family, Iterable[Sample]]]) -> bytes:
    """The whole exposition; UTF-8, with undecodable file names replaced rather than failing."""
    return "".join(render_family(f, s) for f, s in families).encode("utf-8", errors="replace")
