"""Every metric family the exporter publishes, in exposition order: the areas' own declarations, joined.

Each area module declares and fills its families; this module only orders them. The docs are tested
against `FAMILIES`.
"""

from __future__ import annotations

from sepm_exporter.metrics import clients, exporter, groups, keystore, probes, servers
from sepm_exporter.metrics.family import Family

AREAS = (servers, groups, clients, exporter, keystore, probes)

FAMILIES: tuple[Family, ...] = (
    *servers.FAMILIES,
    *groups.FAMILIES,
    *clients.FAMILIES,
    *exporter.FAMILIES,
    *keystore.FAMILIES,
    *probes.FAMILIES,
)

BY_NAME = {family.name: family for family in FAMILIES}
