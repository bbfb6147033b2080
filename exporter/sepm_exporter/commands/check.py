"""`check`: scan once and say what is wrong, as text, JSON or the stranded-client list; exit 2 when critical."""

from __future__ import annotations

import sys

from sepm_exporter.commands.once import scan_once
from sepm_exporter.judge import renewal
from sepm_exporter.judge.export import findings_json, stranded_csv, stranded_json
from sepm_exporter.judge.findings import Severity, worst
from sepm_exporter.judge.report import render_report
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import Config


def run_check_command(config: Config, fmt: str, stranded_only: bool, renewal_arg: str | None) -> int:
    exporter = scan_once(config, probe=True)  # what the servers serve now, into the same report
    return run_check(exporter, fmt, stranded_only, renewal_arg)


def run_check(exporter: Exporter, fmt: str, stranded_only: bool, renewal_arg: str | None = None) -> int:
    """The report (with its renewal plan), the findings as JSON, or the stranded-client list; exit 2 when
    something is critical. With `--renewal`, the exit code answers the what-if alone."""
    report = exporter.report()
    found = report.findings
    if stranded_only:
        sys.stdout.write(stranded_csv(report.stranded) if fmt == "csv" else stranded_json(report.stranded))
    elif fmt == "json":
        plan = renewal.plan_data(report.plan) if report.plan is not None else None
        sys.stdout.write(findings_json(report.rows, worst(found), report.at, plan))
    else:
        print(render_report(report.servers, found, report.counts), end="")
        if report.plan is not None:
            print("\n".join(renewal.render_plan(report.plan)))
    if renewal_arg is not None:
        return run_renewal_check(exporter, [n.strip() for n in renewal_arg.split(",") if n.strip()])
    return 2 if worst(found) >= Severity.CRITICAL else 0


def run_renewal_check(exporter: Exporter, names: list[str]) -> int:
    """`check --renewal`: the what-if for those servers; 2 when it would strand any client, 1 for a name not watched."""
    watched = exporter.config.servers
    unknown = [n for n in names if n not in {s.name for s in watched}]
    if unknown or not names:
        print(f"--renewal: no watched server named {', '.join(unknown) or '(none given)'}; "
              f"watched: {', '.join(s.name for s in watched)}", file=sys.stderr)
        return 1
    what_if = exporter.renewal_what_if(names)
    print("\n".join(renewal.render_what_if(what_if)))
    plan = exporter.report().plan
    if plan is not None:
        print(f"  safe order: {plan.advice}")
    return 2 if what_if.stranded_count else 0
