"""Tomcat's keystore against Apache's certificate: is the key Tomcat serves the key of server.crt?

The keystore's leaf is published through the `sepm_certificate_*` families like any certificate
file of the server (the scanner files it under its own `file` label); this adds the comparison.
"""

from __future__ import annotations

from sepm_exporter.judge.served import keystore_key_match
from sepm_exporter.metrics.family import Family, Sample
from sepm_exporter.sources.inventory import Inventory

FAMILIES: tuple[Family, ...] = (
    Family("sepm_server_keystore_key_match", "gauge", ("server", "site"),
           "1 when the leaf key of tomcat/etc/keystore.jks is the key of apache/conf/ssl/server.crt, else 0."),
)


def samples(inventory: Inventory) -> dict[str, list[Sample]]:
    samples: list[Sample] = [
        ((name, inventory.servers[name].config.site), 1.0 if match else 0.0)
        for name, match in sorted(keystore_key_match(inventory).items())
    ]
    return {"sepm_server_keystore_key_match": samples}
