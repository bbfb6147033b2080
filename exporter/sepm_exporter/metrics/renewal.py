"""Stranded-if-renewed figures: the blast radius of a new-key renewal, before anyone clicks."""

from __future__ import annotations

from sepm_exporter.judge.renewal import ALL, RenewalPlan
from sepm_exporter.metrics.family import Family, Sample

FAMILIES: tuple[Family, ...] = (
    Family("sepm_renewal_stranded_clients", "gauge", ("server",),
           "Clients a new-key renewal of this server now would leave with no verifiable server; "
           "server=\"*\": every watched server at once."),
    Family("sepm_renewal_unknown_clients", "gauge", ("server",),
           "Clients whose fate under that renewal cannot be told here (they list a server this exporter does not watch)."),
    Family("sepm_renewal_rollout_clients", "gauge", ("server",),
           "Clients whose SyLink.xml already embeds this server's current key (the rollout after a key change)."),
)


def samples(plan: RenewalPlan) -> dict[str, list[Sample]]:
    stranded: list[Sample]
    unknown: list[Sample]
    rollout: list[Sample]
    stranded = [((p.what_if.servers[0],), float(p.what_if.stranded_count)) for p in plan.servers]
    unknown = [((p.what_if.servers[0],), float(p.what_if.unknown_count)) for p in plan.servers]
    if plan.servers:
        stranded.append(((ALL,), float(plan.everything.stranded_count)))
        unknown.append(((ALL,), float(plan.everything.unknown_count)))
    rollout = [((p.rollout.server,), float(p.rollout.holding)) for p in plan.servers]
    return {"sepm_renewal_stranded_clients": stranded, "sepm_renewal_unknown_clients": unknown,
            "sepm_renewal_rollout_clients": rollout}
