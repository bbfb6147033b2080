"""`--web.listen-address`: checked before anything starts, so a typo is one line, not a traceback.

The form is Go's `host:port` (what exporter-toolkit accepts): `:10877` for every interface,
`127.0.0.1:10877`, `[::1]:10877`. A bare port number is refused, as Go refuses it ("missing port
in address"), because guessing whether `31878` meant all interfaces or loopback is how an exporter
ends up exposed.
"""

from __future__ import annotations


class ListenAddressError(ValueError):
    """One line: what is wrong and what to write instead."""


def parse_listen(address: str) -> tuple[str, int]:
    """(host, port); host "" means every interface."""
    text = address.strip()
    if text.isdigit():
        raise ListenAddressError(f"{address!r} has no host part: write :{text} for every interface or 127.0.0.1:{text} for loopback only")
    host, colon, port = text.rpartition(":")
    if not colon or (host and not host.endswith("]") and ":" in host):
        raise ListenAddressError(f"{address!r} has no port: write host:port, e.g. 127.0.0.1:10877, :10877 or [::1]:10877")
    if host.startswith("[") != host.endswith("]"):
        raise ListenAddressError(f"{address!r}: an IPv6 host goes in brackets, e.g. [::1]:10877")
    if not port.isdigit():
        raise ListenAddressError(f"{address!r}: port {port!r} is not a number")
    number = int(port)
    if number > 65535:
        raise ListenAddressError(f"{address!r}: port {number} is out of range (0-65535; 0 picks a free port)")
    return host.strip("[]"), number
