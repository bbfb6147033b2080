"""`check`: scan once and say what is wrong, as text, JSON or the stranded-client list; exit 2 when critical.

Every `--format json|csv` output is exactly one document on stdout: with `--renewal`, the what-if
goes into the JSON document (`renewal_what_if`), never after it. `--renewal` names are checked
against the config before anything is scanned or printed.
"""

from __future__ import annotations

import sys

from sepm_exporter.commands.once import scan_once
from sepm_exporter.judge import renewal
from sepm_exporter.judge.export import findings_json, stranded_csv, stranded_json
from sepm_exporter.judge.findings import Severity, worst
from sepm_exporter.judge.renewal import WhatIf
from sepm_exporter.judge.report import render_report
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import Config


def renewal_names(config: Config, renewal_arg: str | None) -> tuple[list[str] | None, str]:
    """The `--renewal` servers, or why not (a name that is not watched): said before any scan."""
    if renewal_arg is None:
        return None, ""
    names = [n.strip() for n in renewal_arg.split(",") if n.strip()]
    watched = [s.name for s in config.servers]
    unknown = [n for n in names if n not in watched]
    if unknown or not names:
        return None, (f"--renewal: no watched server named {', '.join(unknown) or '(none given)'}; "
                      f"watched: {', '.join(watched) or 'none'}")
    return names, ""


def run_check_command(config: Config, fmt: str, stranded_only: bool, renewal_arg: str | None) -> int:
    names, problem = renewal_names(config, renewal_arg)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    exporter = scan_once(config, probe=True)  # what the servers serve now, into the same report
    return run_check(exporter, fmt, stranded_only, names)


def run_check(exporter: Exporter, fmt: str, stranded_only: bool, names: list[str] | None = None) -> int:
    """The report (with its renewal plan), the findings as JSON, or the stranded-client list.

    Exit 2 when something is critical, or, with `--renewal`, when the what-if would strand a client
    or clients are stranded already; 0 otherwise (warnings, an unreadable root included).
    """
    report = exporter.report()
    found = report.findings
    what_if: WhatIf | None = exporter.renewal_what_if(names) if names else None
    if stranded_only:
        sys.stdout.write(stranded_csv(report.stranded) if fmt == "csv" else stranded_json(report.stranded))
    elif fmt == "json":
        plan = renewal.plan_data(report.plan) if report.plan is not None else None
        extra: dict[str, object] | None = {"renewal_what_if": renewal.what_if_data(what_if)} if what_if is not None else None
        sys.stdout.write(findings_json(report.rows, worst(found), report.at, plan, extra))
    else:
        print(render_report(report.servers, found, report.counts, report.group_names), end="")
        if report.plan is not None:
            print("\n".join(renewal.render_plan(report.plan)))
        if what_if is not None:
            print("\n".join(renewal.render_what_if(what_if)))
    critical = worst(found) >= Severity.CRITICAL
    if what_if is not None:
        critical = critical or bool(what_if.stranded_count or what_if.already_count)
    return 2 if critical else 0
