"""The Prometheus text format, written by hand so a scrape only joins bytes.

Label sets are de-duplicated here, as a last line of defence: one duplicate series makes
Prometheus reject the whole scrape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sepm_exporter.metrics.family import Family, Sample


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


def header(family: Family) -> str:
    return f"# HELP {family.name} {_escape_help(family.help)}\n# TYPE {family.name} {family.type}\n"


def lines(family: Family, samples: Iterable[Sample]) -> str:
    """One line per unique label set (first wins)."""
    seen: set[tuple[str, ...]] = set()
    name = family.name + ("_total" if family.type == "counter" and not family.name.endswith("_total") else "")
    prefixes = tuple(f'{label}="' for label in family.labels)
    histogram = family.type == "histogram"
    out = []
    for values, value in samples:
        if values in seen:
            continue
        seen.add(values)
        # The common value needs no escaping: tested inline, a function call per label is most of the cost.
        pairs = ",".join([
            prefix + (v if "\\" not in v and '"' not in v and "\n" not in v else escape_label(v)) + '"'
            for prefix, v in zip(prefixes, values, strict=True) if v
        ])
        series = name
        if histogram:  # the last label is `le`; "sum" and "count" there name the other two series
            series, pairs = _histogram_series(family, values, pairs)
        text = "1.0" if value == 1.0 else format_value(value)
        out.append(f"{series}{{{pairs}}} {text}\n" if pairs else f"{series} {text}\n")
    return "".join(out)


def _histogram_series(family: Family, values: tuple[str, ...], pairs: str) -> tuple[str, str]:
    """A histogram's samples carry `le` last: a bound or `+Inf` for `_bucket`, `sum` or `count` for the others."""
    le = values[-1]
    if le in ("sum", "count"):
        return f"{family.name}_{le}", pairs.rpartition(",le=")[0] if ",le=" in pairs else ""
    return f"{family.name}_bucket", pairs


def encode(text: str) -> bytes:
    """UTF-8, with undecodable file names replaced rather than failing."""
    return text.encode("utf-8", errors="replace")

