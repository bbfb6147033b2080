"""The landing page: what an on-call opens first. One server-rendered page, inline CSS, no scripts.

It must work on an isolated SEPM host, so nothing is fetched from elsewhere. Every name on it
(clients, groups, paths) comes from files an attacker may write, so every value is escaped. A list
of affected clients is never cut silently: the page shows the first ones and links to a paged list.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.parse
from collections.abc import Iterable

from sepm_exporter import __version__
from sepm_exporter.judge.clients import ClientStatus
from sepm_exporter.judge.findings import ServerLine, Severity, plural
from sepm_exporter.judge.remediation import Row
from sepm_exporter.judge.renewal import WhatIf, now_safe
from sepm_exporter.runtime import Exporter, Report

RUNBOOK_BASE = "runbooks/"  # relative: this exporter serves them (serving/runbooks.py), under its own auth
INLINE_CLIENTS = 100  # clients listed under a row; the rest are one link away
PAGE_SIZE = 200  # clients per page of /clients
CLIENTS_PATH = "/clients"
DASH = "&ndash;"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
header{background:#1f2937;color:#fff;padding:12px 24px;display:flex;flex-wrap:wrap;gap:4px 24px;align-items:baseline}
header h1{font-size:20px;margin:0}header a{color:#cfe3ff}header .meta{font-size:13px;color:#d1d5db}
main{padding:16px 24px;max-width:1400px}
.banner{padding:14px 18px;border-radius:6px;font-size:20px;font-weight:700;margin:8px 0 16px;border-left:10px solid}
.banner small{display:block;font-size:14px;font-weight:400;margin-top:4px}
.b-ok{background:#e7f6ec;border-color:#1e8e3e;color:#0d4f22}
.b-warning{background:#fff4d6;border-color:#c98a00;color:#5c3d00}
.b-critical{background:#fde7e7;border-color:#c5221f;color:#7a0f0c}
h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:14px}
th,td{border:1px solid #d9dce1;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.sev{font-weight:700;padding:2px 6px;border-radius:3px;white-space:nowrap}
.s-critical{background:#c5221f;color:#fff}.s-warning{background:#f2b200;color:#1d1d1f}.s-ok{background:#1e8e3e;color:#fff}
.bad{color:#b3261e;font-weight:700}.good{color:#1e6e34}
code{font-size:12px;overflow-wrap:anywhere}details summary{cursor:pointer;color:#174ea6}
td.clients{min-width:10em}td.since{min-width:8.5em}td.runbook{max-width:13em}
ul.clients{columns:2 7em;margin:6px 0;padding-left:18px;font-size:13px}
td.subject{min-width:10em;overflow-wrap:anywhere}td.what{min-width:11em}
.fix{min-width:20em;font-size:13px}.muted{color:#5f6368;font-size:13px}
.totals{display:flex;gap:12px;flex-wrap:wrap}.totals div{background:#fff;border:1px solid #d9dce1;padding:8px 14px;border-radius:4px}
.totals b{display:block;font-size:22px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "unknown"
    stamp = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} ({_ago(now - timestamp)})"


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _sev(severity: Severity) -> str:
    return f'<span class="sev s-{severity.name.lower()}">{_e(severity.name)}</span>'


def _clients_link(subject: str, page: int = 1) -> str:
    return f"{CLIENTS_PATH}?{urllib.parse.urlencode({'subject': subject, 'page': page})}"


def _tag(client: str, evidence: dict[str, str]) -> str:
    """A client's name, marked when SEPM's records are its only evidence (no SyLink.xml of its own read)."""
    return f'{_e(client)} <small class="evidence">api</small>' if evidence.get(client) == "api" else _e(client)


def _affected(row: Row, evidence: dict[str, str] | None = None) -> str:
    if not row.clients:
        return '<td class="clients">&ndash;</td>'
    shown = row.clients[:INLINE_CLIENTS]
    items = "".join(f"<li>{_tag(c, evidence or {})}</li>" for c in shown)
    pages = -(-len(row.clients) // PAGE_SIZE)
    more = (f'<p>{len(shown)} of {len(row.clients)} shown. <a href="{_e(_clients_link(row.subject))}">'
            f"All {len(row.clients)} clients ({pages} page{'s' if pages != 1 else ''})</a></p>"
            if len(row.clients) > len(shown) else
            f'<p><a href="{_e(_clients_link(row.subject))}">List on its own page</a></p>')
    return (f'<td class="clients"><details><summary><b class="count">{len(row.clients)}</b> client'
            f"{'s' if len(row.clients) != 1 else ''}</summary>"
            f'<ul class="clients">{items}</ul>{more}</details></td>')


def _problem_rows(found: list[Row], files: dict[str, tuple[str, str]], notes: dict[str, str], names: dict[str, str],
                  now: float, evidence: dict[str, str] | None = None) -> str:
    if not found:
        return '<tr><td colspan="7" class="good">Nothing needs attention.</td></tr>'
    out = []
    explained: set[str] = set()  # groups whose long fix is already on a row above: said once, not twice
    for row in found:
        fix = _e(row.fix)
        group = row.subject[len("group "):] if row.subject.startswith("group ") else ""
        if row.alert in ("SEPMClientServerKeyUntrusted", "SEPMClientSyLinkStale") and group in explained:
            fix = (f"Let them pull (<code>smc -updateconfig</code>) or import <code>{_e(files[group][1])}</code>, as above."
                   if group in files else "No file to import yet: see the row above.")
        elif group in files and row.alert in ("SEPMClientServerKeyUntrusted", "SEPMClientSyLinkStale"):
            server, path = files[group]
            fix = (f"Import <code>{_e(path)}</code> (group {_e(group)}'s current file, on {_e(server)}) on these "
                   f"clients: <code>SylinkDrop.exe -silent SyLink.xml</code>. Or restore the previous certificate and "
                   f"key (keep-key route) until they have it. For a deployment tool: "
                   f"<code>sepm-exporter check --stranded --format csv</code>.")
            explained.add(group)
        elif group in notes and row.alert == "SEPMClientServerKeyUntrusted":
            fix = f"No file to import yet: {_e(notes[group])}."
            explained.add(group)
        subject = f"group {_group_cell(group, names)}" if group in names else _e(row.subject)
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", "<wbr>", _e(row.alert))  # breaks between words, not mid-word
        link = (f'<a class="runbook" href="{_e(RUNBOOK_BASE + row.alert)}">{name}</a>'
                if row.runbook else "&ndash;")
        out.append(
            f'<tr class="problem sev-{row.severity.name.lower()}"><td>{_sev(row.severity)}</td><td class="subject">{subject}</td>'
            f'<td class="what">{_e(row.message)}</td>{_affected(row, evidence)}<td class="since">{_e(_when(row.since, now))}</td>'
            f'<td class="fix">{fix}</td><td class="runbook">{link}</td></tr>'
        )
    return "".join(out)


_SCANNING = ('<div class="banner b-warning" id="banner" data-state="scanning">FIRST SCAN RUNNING'
             "<small>Nothing is judged yet: this page fills in when the first scan of every root ends.</small></div>")


def _banner(found: list[Row], untrusted: int) -> str:
    level = max((r.severity for r in found), default=Severity.OK)
    counts = {s: sum(1 for r in found if r.severity == s) for s in (Severity.CRITICAL, Severity.WARNING)}
    if level == Severity.OK:
        return '<div class="banner b-ok" id="banner" data-state="ok">ALL CLEAR<small>Nothing needs attention.</small></div>'
    parts = [f"{n} critical" if s == Severity.CRITICAL else f"{n} warning{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    detail = ", ".join(parts)
    if untrusted:
        detail += f"; {untrusted} client{'s' if untrusted != 1 else ''} cannot connect"
    name = level.name.lower()
    return (f'<div class="banner b-{name}" id="banner" data-state="{name}">{_e(level.name)}: '
            f"{len(found)} {'problems need' if len(found) != 1 else 'problem needs'} attention<small>{_e(detail)}</small></div>")


def _servers(lines: list[ServerLine], report: Report, now: float) -> str:
    out = []
    for s in lines:
        days = ("&ndash;" if s.expires_in_days is None else f"{s.expires_in_days:.0f}" if s.expires_in_days >= 0
                else "expired")
        days_class = "bad" if s.expires_in_days is not None and s.expires_in_days < 30 else ""
        weak = s.signature_hash in ("sha1", "md5", "md2", "md4")
        changed_at = report.key_changed.get(s.server)
        changed = _e(_when(changed_at, now)) if changed_at is not None else DASH
        rollout = next((p.rollout for p in report.plan.servers if p.rollout.server == s.server), None) if report.plan else None
        if changed_at is not None and rollout is not None and rollout.total:
            done = "every client seen embeds it" if rollout.share >= 1.0 else f"{rollout.share:.0%} of the clients embed it"
            changed += f"; new key in {rollout.holding} of {plural(rollout.total, 'client')} ({done})"
        out.append(
            f"<tr><td>{_e(s.server)}</td><td>{_e(s.site) or DASH}</td>"
            f"<td class=\"{'good' if s.root_up else 'bad'}\">{'up' if s.root_up else 'DOWN'}</td>"
            f'<td class="num {days_class}">{days}</td>'
            f"<td class=\"{'bad' if weak else ''}\">{_e(s.signature_hash) or DASH}{' (weak)' if weak else ''}</td>"
            f'<td class="num">{s.key_bits or "&ndash;"}</td><td><code>{_e(s.public_key_sha256[:16]) or DASH}</code></td>'
            f"<td>{changed}</td></tr>"
        )
    return "".join(out) or '<tr><td colspan="8" class="muted">no servers configured</td></tr>'


def _group_cell(group: str, names: dict[str, str]) -> str:
    """The group's name (PreferredGroup) above its ID: the name is what the SEPM console shows."""
    name = names.get(group)
    return f'<span class="group-name">{_e(name)}</span><br><code>{_e(group)}</code>' if name else f"<code>{_e(group)}</code>"


def _groups(report: Report) -> str:
    per_group: dict[tuple[str, str], int] = {}  # (group, state): a shared file's clients count under its lead group
    for (group_id, _set, state), count in report.counts.items():
        per_group[(group_id, state)] = per_group.get((group_id, state), 0) + count
    groups = sorted({g for g, _ in per_group} | set(report.replica_mismatch) | {g for _, g in report.key_match})
    out = []
    for group in groups:
        mismatch = report.replica_mismatch.get(group)
        parity = "&ndash;" if mismatch is None else ('<span class="bad">MISMATCH</span>' if mismatch else '<span class="good">same</span>')
        keys = ", ".join(
            f"{_e(server)}: {'yes' if ok else 'NO'}" for (server, g), ok in sorted(report.key_match.items()) if g == group
        )
        counts = "".join(f'<td class="num">{per_group.get((group, s.value), 0)}</td>' for s in ClientStatus)
        out.append(f"<tr><td>{_group_cell(group, report.group_names)}</td><td>{parity}</td><td>{keys or '&ndash;'}</td>{counts}</tr>")
    return "".join(out) or '<tr><td colspan="7" class="muted">no groups seen</td></tr>'


def _roots(report: Report) -> str:
    items = [(root.kind, root.path, root.up) for root in report.roots]
    return "".join(
        f"<tr><td>{_e(kind)}</td><td><code>{_e(path)}</code></td>"
        f"<td class=\"{'good' if up else 'bad'}\">{'up' if up else 'DOWN'}</td></tr>"
        for kind, path, up in items
    )


_PLAN_CLASS = {"safe": "good", "wait": "bad", "unsafe": "bad", "outage": "bad", "unknown": "muted"}


def _stranded(w: WhatIf) -> str:
    """The count a renewal would strand; during an outage, with the clients stranded already beside it."""
    return f"{w.stranded_count} more, {w.already_count} already" if w.already_count else str(w.stranded_count)


def _plan(report: Report, now: float) -> str:
    """The renewal plan: what a new-key renewal of each server would strand now, and the order that strands nobody."""
    if report.plan is None or not report.plan.servers:
        return '<p class="muted">no server certificate to plan a renewal for</p>'
    plan = report.plan
    rows = []
    for p in plan.servers:
        w, roll = p.what_if, p.rollout
        rollout = (f"{roll.holding} of {plural(roll.total, 'client')} ({roll.share:.0%}) since {_e(_when(roll.changed_at, now))}"
                   if roll.changed_at is not None else DASH)
        rows.append(
            f'<tr data-server="{_e(w.servers[0])}"><td>{_e(w.servers[0])}</td><td class="num">{_stranded(w)}</td>'
            f'<td class="num">{w.unknown_count}</td><td class="{_PLAN_CLASS.get(w.status, "")}">{_e(w.status.upper())}</td>'
            f"<td>{rollout}</td><td>{_e(p.keep_key)}</td></tr>")
    e = plan.everything
    rows.append(f'<tr data-server="*"><td>all at once ({_e(", ".join(e.servers))})</td><td class="num">{_stranded(e)}</td>'
                f'<td class="num">{e.unknown_count}</td><td class="{_PLAN_CLASS.get(e.status, "")}">{_e(e.status.upper())}</td>'
                f"<td>{DASH}</td><td>{DASH}</td></tr>")
    notes = "".join(f'<p class="good" data-now-safe>{_e(line)}</p>' for line in now_safe(plan))
    return (f'<table id="plan"><tr><th>renew with a new key now</th><th>clients stranded</th><th>unknown</th>'
            f"<th>verdict</th><th>rollout of its last new key</th><th>the alternative that strands nobody</th></tr>"
            f'{"".join(rows)}</table><p id="order"><b>Safe order:</b> {_e(plan.advice)}</p>{notes}'
            f'<p class="muted">{_e(plan.caveat)}</p>')


def _totals(counts: dict[tuple[str, str, str], int]) -> dict[str, int]:
    totals = {s.value: 0 for s in ClientStatus}
    for (_group, _set, state), count in counts.items():
        totals[state] = totals.get(state, 0) + count
    return totals


def _document(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>"
            ).encode("utf-8", errors="backslashreplace")  # a folder name that is not UTF-8 must not empty the page


def _header(exporter: Exporter, report: Report, telemetry_path: str, now: float) -> str:
    source = exporter.config_source or "-"
    if not report.last_scan:
        watching = "first scan running"
    else:  # a quiet estate is not a stale page: say that changes are seen as they happen, and when the last one was
        change = _when(report.last_change, now) if report.last_change else "none yet"
        watching = (f"watching live: changes show within seconds; last change seen {change}; "
                    f"last full check {_ago(now - report.last_scan)}")
    return (f'<header><h1><a href="/" style="color:#fff;text-decoration:none">SEPM Exporter</a></h1>'
            f'<span class="meta">version {_e(__version__)}</span>'
            f'<span class="meta">config <code>{_e(source)}</code></span>'
            f'<span class="meta" id="scan">{_e(watching)}</span>'
            f'<span><a href="{_e(telemetry_path)}">Metrics</a> · <a href="/-/healthy">Health</a> · '
            f'<a href="/-/ready">Readiness</a></span></header>')


def _state(exporter: Exporter) -> tuple[Report, dict[str, tuple[str, str]]]:
    """The runtime's report (made without waiting for a scan) and, per group, the file its stranded clients need."""
    report = exporter.report()
    return report, {s.group_id: (s.server, s.group_file) for s in report.stranded if s.group_file}


def _notes(report: Report) -> dict[str, str]:
    """Per group with stranded clients but no file that would fix them: why, and what to do instead."""
    return {s.group_id: s.note for s in report.stranded if s.note and s.group_id}


def _evidence(report: Report) -> dict[str, str]:
    """Client -> `file` or `api`, for the clients the stranded list names."""
    return {s.client: s.evidence for s in report.stranded}


def page(exporter: Exporter, telemetry_path: str) -> bytes:
    """`/`: banner, what needs attention with its fix and runbook, then the estate at a glance."""
    report, files = _state(exporter)
    now, table = report.at, report.rows
    totals = _totals(report.counts)
    groups = _groups(report)
    roots = _roots(report)
    servers = _servers(report.servers, report, now)
    boxes = "".join(f'<div class="total" data-state="{_e(k)}"><b>{v}</b>{_e(k)}</div>' for k, v in totals.items())
    body = f"""{_header(exporter, report, telemetry_path, now)}<main>
{_banner(table, totals.get(ClientStatus.UNTRUSTED.value, 0)) if exporter.ready else _SCANNING}
<h2>Needs attention</h2>
<table id="problems"><tr><th>severity</th><th>subject</th><th>what</th><th>clients</th><th>since</th><th>fix</th><th>runbook</th></tr>
{_problem_rows(table, files, _notes(report), report.group_names, now, _evidence(report))}</table>
<h2>Clients</h2><div class="totals" id="totals">{boxes}</div>
<h2>Renewal plan</h2>{_plan(report, now)}
<h2>Server certificates</h2>
<table id="servers"><tr><th>server</th><th>site</th><th>root</th><th>days left</th><th>signature</th><th>key bits</th>
<th>key (sha256)</th><th>key changed</th></tr>{servers}</table>
<h2>Groups: replica parity and clients</h2>
<table id="groups"><tr><th>group</th><th>partners agree</th><th>embeds its server's key</th>
{"".join(f"<th>{_e(s.value)}</th>" for s in ClientStatus)}</tr>{groups}</table>
<h2>Watched roots</h2><table id="roots"><tr><th>what</th><th>path</th><th>state</th></tr>{roots}</table>
<p class="muted"><a href="runbooks/">Runbooks</a>, served by this exporter.</p>
</main>"""
    level = worst_of(table)
    return _document(f"{level.name if level else 'OK'} · SEPM Exporter", body)


def worst_of(table: Iterable[Row]) -> Severity:
    return max((r.severity for r in table), default=Severity.OK)


def clients_page(exporter: Exporter, telemetry_path: str, query: str) -> tuple[int, bytes]:
    """`/clients?subject=...&page=N`: one row's affected clients, PAGE_SIZE at a time, with the file to import."""
    params = urllib.parse.parse_qs(query)
    subject = params.get("subject", [""])[0]
    try:
        number = max(1, int(params.get("page", ["1"])[0]))
    except ValueError:
        number = 1
    report, files = _state(exporter)
    now, table = report.at, report.rows
    matching = [r for r in table if r.subject == subject and r.clients]
    if not matching:
        body = (f"{_header(exporter, report, telemetry_path, now)}<main><h2>No clients affected by {_e(subject or '(nothing)')}</h2>"
                f'<p><a href="/">Back to the overview</a></p></main>')
        return 404, _document("Not found · SEPM Exporter", body)
    row = matching[0]
    pages = max(1, -(-len(row.clients) // PAGE_SIZE))
    number = min(number, pages)
    first = (number - 1) * PAGE_SIZE
    shown = row.clients[first:first + PAGE_SIZE]
    group = subject[len("group "):] if subject.startswith("group ") else ""
    target = files.get(group)
    file_cell = f"<code>{_e(target[1])}</code>" if target else "&ndash;"
    named = f' ({_e(report.group_names[group])})' if group in report.group_names else ""
    evidence = _evidence(report)
    items = "".join(f"<tr><td>{first + i}</td><td>{_e(c)}</td><td>{_e(evidence.get(c, 'file'))}</td><td>{file_cell}</td></tr>"
                    for i, c in enumerate(shown, start=1))
    nav = []
    if number > 1:
        nav.append(f'<a rel="prev" href="{_e(_clients_link(subject, number - 1))}">previous page</a>')
    nav.append(f"page {number} of {pages}")
    if number < pages:
        nav.append(f'<a rel="next" href="{_e(_clients_link(subject, number + 1))}">next page</a>')
    body = f"""{_header(exporter, report, telemetry_path, now)}<main>
<p><a href="/">Back to the overview</a></p>
<h2>{_sev(row.severity)} {_e(subject)}{named}: {_e(row.message)}</h2>
<p id="range">Clients {first + 1}&ndash;{first + len(shown)} of {len(row.clients)} · {" · ".join(nav)}</p>
<table id="clients"><tr><th>#</th><th>client</th><th>evidence</th><th>file to import</th></tr>{items}</table>
<p>{" · ".join(nav)}</p></main>"""
    return 200, _document(f"{subject} · SEPM Exporter", body)

