"""`check --format json` and `check --stranded --format csv|json`: the findings and the clients to fix, for tools.

The shapes are documented in the README and stable: a deployment tool reads `client` and
`group_file` from the stranded list and imports that file on that client (SylinkDrop).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable

from sepm_exporter.judge.findings import Severity
from sepm_exporter.judge.remediation import Row, StrandedClient

STRANDED_COLUMNS = ("client", "group_id", "status", "since", "server", "group_file", "group_name", "note", "evidence", "rule",
                    "reason")


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def findings_json(rows: Iterable[Row], worst: Severity, now: float, plan: dict[str, object] | None = None,
                  extra: dict[str, object] | None = None) -> str:
    """Every finding, one per subject, with its severity, alert, runbook, since, affected clients and fix;
    and the renewal plan (what a new-key renewal of each server would strand, and the safe order)."""
    document: dict[str, object] = {
        "status": worst.name.lower(),
        "generated": _iso(now),
        "findings": [
            {
                "severity": row.severity.name.lower(),
                "alert": row.alert,
                "subject": row.subject,
                "message": row.message,
                "since": _iso(row.since),
                "since_unix": row.since,
                "clients": list(row.clients),
                "client_count": len(row.clients),
                "fix": row.fix,
                "runbook": row.runbook,
            }
            for row in rows
        ],
    }
    if plan is not None:
        document["renewal_plan"] = plan
    document.update(extra or {})  # `check --renewal`: the what-if, inside the one document
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _record(client: StrandedClient) -> dict[str, str]:
    return {
        "client": client.client,
        "group_id": client.group_id,
        "status": client.status,
        "since": _iso(client.since) or "",
        "server": client.server,
        "group_file": client.group_file,
        "group_name": client.group_name,
        "note": client.note,
        "evidence": client.evidence,
        "rule": client.rule,
        "reason": client.reason,
    }


def stranded_json(clients: Iterable[StrandedClient]) -> str:
    return json.dumps([_record(c) for c in clients], indent=2, ensure_ascii=False) + "\n"


def stranded_csv(clients: Iterable[StrandedClient]) -> str:
    """RFC 4180 with a header row; a value that a spreadsheet would run as a formula is prefixed with '."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STRANDED_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for client in clients:
        writer.writerow({k: ("'" + v if v[:1] in ("=", "+", "-", "@") else v) for k, v in _record(client).items()})
    return out.getvalue()
