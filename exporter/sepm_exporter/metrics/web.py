"""Where this exporter is reached: the base the alerts' runbook links are made from (alerts/*.rules.yml)."""

from __future__ import annotations

from sepm_exporter.metrics.family import Family, Sample

FAMILIES: tuple[Family, ...] = (
    Family("sepm_exporter_runbook_base_info", "gauge", ("url",),
           "The URL under which this exporter serves the runbooks (--web.external-url + /runbooks/); the value is 1. "
           "The shipped rules build runbook_url from it."),
)


def samples(external_url: str) -> dict[str, list[Sample]]:
    """From the exporter's external URL (no trailing slash)."""
    return {"sepm_exporter_runbook_base_info": [((f"{external_url}/runbooks/",), 1.0)]}
