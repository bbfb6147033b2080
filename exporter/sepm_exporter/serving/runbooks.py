"""`/runbooks/<Alert>`: the runbooks, served by the exporter itself, so an isolated SEPM network can read them.

They are the Markdown files of docs/runbooks/, packaged into the wheel beside this module (setup.py
copies them at build time) and read from the source tree in a checkout. The renderer knows the
little Markdown the runbooks use (headings, paragraphs, lists, tables, code, bold, links) and
escapes everything else: nothing is fetched, nothing is run.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

PREFIX = "/runbooks/"
PACKAGED = Path(__file__).parent / "runbooks"  # in a wheel
CHECKOUT = Path(__file__).parents[3] / "docs" / "runbooks"  # in the source tree (editable installs, tests)
NAME = re.compile(r"[A-Za-z0-9]{1,80}")
CSS = ("body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:52em;padding:16px 24px;"
       "color:#1d1d1f;line-height:1.45}code{background:#eef0f3;padding:0 3px;overflow-wrap:anywhere}"
       "table{border-collapse:collapse}th,td{border:1px solid #d9dce1;padding:4px 8px;text-align:left;vertical-align:top}"
       "nav{font-size:14px;margin-bottom:12px}")


def folder() -> Path:
    return PACKAGED if PACKAGED.is_dir() else CHECKOUT


def _inline(text: str) -> str:
    """Escape, then code spans, bold and links; a link to another runbook stays on this exporter."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        escaped = html.escape(part)
        escaped = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)
        out.append(re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", _link, escaped))
    return "".join(out)


def _link(match: re.Match[str]) -> str:
    label, target = match.group(1), match.group(2)
    page = re.fullmatch(r"([A-Za-z0-9]+)\.md(#[\w-]+)?", target)
    if page:
        return f'<a href="{PREFIX}{page.group(1)}">{label}</a>'
    return f"{label} (<code>docs/{target.removeprefix('../')}</code>)"  # a doc of the repository, named


def render(markdown: str) -> str:
    """The runbooks' Markdown as HTML (block by block)."""
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    kind = ""
    table: list[list[str]] = []

    def flush() -> None:
        nonlocal kind
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            out.append(f"<{kind}>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + f"</{kind}>")
            items.clear()
        if table:
            head, *body = table
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body)
                       + "</table>")
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        heading = re.match(r"(#{1,4}) (.*)", stripped)
        bullet = re.match(r"[-*] (.*)", stripped)
        number = re.match(r"\d+\. (.*)", stripped)
        if not stripped:
            flush()
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped.startswith("|"):
            if paragraph or items:
                flush()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                table.append(cells)
        elif bullet or number:
            wanted = "ul" if bullet else "ol"
            if paragraph or table or (items and kind != wanted):
                flush()
            kind = wanted
            items.append(bullet.group(1) if bullet else number.group(1) if number else stripped)
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + stripped  # a list item continued on the next line
        else:
            if items or table:
                flush()
            paragraph.append(stripped)
    flush()
    return "".join(out)


def _document(title: str, body: str) -> bytes:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f'<nav><a href="/">SEPM Exporter</a> · <a href="{PREFIX}">Runbooks</a></nav>{body}</body></html>').encode()


@cache
def names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in folder().glob("*.md") if NAME.fullmatch(p.stem)))


@cache
def _page(name: str) -> bytes:
    return _document(f"{name} · SEPM Exporter", render((folder() / f"{name}.md").read_text(encoding="utf-8")))


def page(path: str) -> tuple[int, bytes]:
    """(status, HTML) for `/runbooks/`, `/runbooks/<Alert>` or `/runbooks/<Alert>.md`; 404 for anything else."""
    name = path[len(PREFIX):].removesuffix(".md")
    if not name:
        links = "".join(f'<li><a href="{PREFIX}{n}">{n}</a></li>' for n in names())
        return 200, _document("Runbooks · SEPM Exporter", f"<h1>Runbooks</h1><ul>{links}</ul>")
    if name not in names():  # only the files listed: no path reaches the disk from a request
        return 404, _document("Not found · SEPM Exporter", f"<h1>No runbook named {html.escape(name)}</h1>")
    return 200, _page(name)
