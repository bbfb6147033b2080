"""Every metric family the exporter publishes, in exposition order: the areas' own declarations, joined.

Each area module declares and fills its families; this module only orders them. The docs are tested
against `FAMILIES`.
"""

from __future__ import annotations

from sepm_exporter.metrics import (
    api,
    api_clients,
    clients,
    exporter,
    groups,
    keystore,
    probes,
    renewal,
    serverlist,
    servers,
    web,
)
from sepm_exporter.metrics.family import Family

AREAS = (servers, groups, serverlist, clients, exporter, keystore, probes, renewal, api, api_clients, web)

FAMILIES: tuple[Family, ...] = tuple(family for area in AREAS for family in area.FAMILIES)

BY_NAME = {family.name: family for family in FAMILIES}
