"""`sepm-exporter healthcheck`: is the `serve` on this listen address alive? For a container's HEALTHCHECK.

It reads the same `--web.listen-address` and `--web.config.file` (or their environment variables)
as `serve`, so changing the port or adding TLS does not break the check. With `basic_auth_users`
the web config holds only bcrypt hashes, so no password is at hand: a 401 with the exporter's own
challenge proves the server is up and answering, which is what liveness means. Health endpoints
stay behind the same authentication as everything else.
"""

from __future__ import annotations

import http.client
import ssl
import sys
from pathlib import Path

from sepm_exporter.settings.config import ConfigError
from sepm_exporter.settings.listen import parse_listen

REALM = 'Basic realm="sepm-exporter"'


def _target(host: str) -> str:
    """Where to connect for a bind address: every interface is reachable on loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def healthcheck(listen: str, web_config: Path | None, timeout: float) -> int:
    """0 when /-/healthy answers 200 (or 401 with our challenge); 1 with one line on stderr otherwise."""
    from sepm_exporter.settings.webconfig import load_web_config

    host, port = parse_listen(listen)
    tls = False
    if web_config is not None:
        try:
            tls = load_web_config(web_config).tls is not None
        except ConfigError as exc:
            print(f"unhealthy: web config: {exc.problems[0]}", file=sys.stderr)
            return 1
    target = _target(host)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # liveness on loopback, not identity
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(target, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        connection.request("GET", "/-/healthy")
        response = connection.getresponse()
        status = response.status
        challenge = response.getheader("WWW-Authenticate", "")
    except ssl.SSLError as exc:
        if "CERTIFICATE_REQUIRED" in str(exc).upper() or "HANDSHAKE_FAILURE" in str(exc).upper():
            return 0  # the server is up and demands a client certificate: alive
        print(f"unhealthy: TLS to {target}:{port}: {exc.reason or exc}", file=sys.stderr)
        return 1
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        print(f"unhealthy: {target}:{port}: {reason}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status == 200 or (status == 401 and challenge == REALM):
        return 0
    print(f"unhealthy: {target}:{port}/-/healthy answered {status}", file=sys.stderr)
    return 1
