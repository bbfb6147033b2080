"""The REST API pollers wired to an exporter: their families published, the database certificate
added to the file side's certificate families (`Exporter.add_server_samples`)."""

from __future__ import annotations

from sepm_exporter.metrics import api as api_metrics
from sepm_exporter.runtime import Exporter
from sepm_exporter.sources.api import ApiPollers, ApiState


def pollers_for(exporter: Exporter) -> ApiPollers | None:
    """Pollers for every server with `api:`, their families published at once (down, counters at 0)."""
    if not any(server.api is not None for server in exporter.config.servers):
        return None

    def on_change(states: list[ApiState]) -> None:
        families = api_metrics.families(states)  # computed outside the exporter's lock
        certificates = api_metrics.certificate_families(states)
        exporter.publish(families)
        exporter.add_server_samples(api_metrics.SOURCE, certificates)

    pollers = ApiPollers(exporter.config.servers, on_change, exporter.clock)
    pollers.initial()
    return pollers


def poll_once(exporter: Exporter) -> None:
    """One-shot commands: one poll of every API, each request bounded by its `timeout`."""
    pollers = pollers_for(exporter)
    if pollers is not None:
        pollers.poll_once()
        pollers.stop()
