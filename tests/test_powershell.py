"""The PowerShell the project ships and documents: parsed, linted, and its exporter commands parsed.

No PowerShell runs here (Debian does not package it, PyPI has none, and npm's `pwsh` downloads it
at install time from outside the registries), so PSScriptAnalyzer cannot either. What can be had:
tree-sitter-powershell from PyPI, a full grammar of the language. Every script and every
```powershell block of the Windows docs must parse without an error node, and a few of
PSScriptAnalyzer's rules, the ones that are properties of the syntax tree, are applied to it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from sepm_exporter.cli import parse_args

ROOT = Path(__file__).parent.parent
SCRIPTS = sorted((ROOT / "deploy" / "windows").glob("*.ps1"))
DOCS = [ROOT / "docs" / "windows.md", ROOT / "deploy" / "windows" / "BUNDLE-README.md"]

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# PSAvoidUsingCmdletAliases: the aliases PowerShell defines out of the box (Windows PowerShell 5.1 and 7).
# `sc` is the dangerous one here: it is Set-Content, not the service tool sc.exe.
_ALIAS_NAMES = """
% ? ac asnp cat cd chdir clc clear clhy cli clp cls clv cnsn compare copy cp cpi cpp curl cvpa dbp del diff dir dnsn ebp
echo epal epcsv epsn erase etsn exsn fc fhx fl foreach ft fw gal gbp gc gcb gci gcm gcs gdr ghy gi gin gjb gl gm gmo gp gps
gpv group gsn gsnp gsv gtz gu gv gwmi h history icm iex ihy ii ipal ipcsv ipmo ipsn irm ise iwmi iwr kill lp ls man md
measure mi mount move mp mv nal ndr ni nmo npssc nsn nv ogv oh popd ps pushd pwd r rbp rcjb rcsn rd rdr ren ri rjb rm rmdir
rmo rni rnp rp rsn rsnp rujb rv rvpa rwmi sajb sal saps sasv sbp sc scb select set shcm si sl sleep sls sort sp spjb spps
spsv start stz sujb sv swmi tee trcm type wget where wjb write
"""
ALIASES = frozenset(_ALIAS_NAMES.split())
# PSUseApprovedVerbs: the verbs of Get-Verb that a script here could plausibly use.
_VERB_NAMES = """
Add Clear Close Copy Enter Exit Find Format Get Hide Join Lock Move New Open Optimize Pop Push Redo Remove Rename Reset
Resize Search Select Set Show Skip Split Step Switch Undo Unlock Watch Backup Checkpoint Compare Compress Convert ConvertFrom
ConvertTo Dismount Edit Expand Export Group Import Initialize Limit Merge Mount Out Publish Restore Save Sync Unpublish
Update Approve Assert Build Complete Confirm Deny Deploy Disable Enable Install Invoke Register Request Restart Resume Start
Stop Submit Suspend Uninstall Unregister Wait Debug Measure Ping Repair Resolve Test Trace Connect Disconnect Read Receive
Send Write Block Grant Protect Revoke Unblock Unprotect Use
"""
APPROVED_VERBS = frozenset(_VERB_NAMES.split())


def powershell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```powershell\n(.*?)^```", markdown, re.M | re.S)


def sources() -> Iterator[tuple[str, bytes]]:
    for script in SCRIPTS:
        yield script.name, script.read_bytes()
    for doc in DOCS:
        for index, block in enumerate(powershell_blocks(doc.read_text(encoding="utf-8"))):
            yield f"{doc.name} block {index + 1}", block.encode("utf-8")


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def problems(source: bytes) -> list[str]:
    """Syntax errors and rule findings, each with its line."""
    tree = PARSER.parse(source)
    found: list[str] = []
    for node in _walk(tree.root_node):
        line = node.start_point[0] + 1
        text = (node.text or b"").decode("utf-8", "replace")
        if node.type == "ERROR" or node.is_missing:
            found.append(f"line {line}: syntax error near {text[:40]!r}")
        elif node.type == "command_name":
            if text.lower() in ALIASES:
                found.append(f"line {line}: PSAvoidUsingCmdletAliases: {text}")
            elif text.lower() in ("invoke-expression",):
                found.append(f"line {line}: PSAvoidUsingInvokeExpression")
            elif text.lower() == "write-host":
                found.append(f"line {line}: PSAvoidUsingWriteHost")
        elif node.type == "function_name":
            verb = text.split("-", 1)[0]
            if "-" not in text or verb not in APPROVED_VERBS:
                found.append(f"line {line}: PSUseApprovedVerbs: {text}")
        elif node.type == "script_parameter" and re.search(r"(?i)\$\w*(password|passwd|pwd)\w*$", text):
            if re.match(r"(?i)\s*(\[\w+\]\s*)*\[string\]", text) or "[" not in text:
                found.append(f"line {line}: PSAvoidUsingPlainTextForPassword: {text}")
        elif node.type == "catch_clause" and re.fullmatch(r"(?s)catch\s*(\[[^\]]*\]\s*)*\{\s*\}", text):
            found.append(f"line {line}: PSAvoidUsingEmptyCatchBlock")
    return found


@pytest.mark.parametrize(("name", "source"), list(sources()), ids=[name for name, _ in sources()])
def test_powershell_parses_and_passes_the_rules(name: str, source: bytes) -> None:
    assert problems(source) == []


def test_every_document_and_script_is_looked_at() -> None:
    names = [name for name, _ in sources()]
    assert {"Install-SepmExporter.ps1", "Copy-SyLink.ps1"} <= set(names)
    assert sum(n.startswith("windows.md") for n in names) >= 6  # install, check, rights, gMSA, firewall, uninstall, ...


def test_the_checks_can_fail() -> None:
    """A planted alias, Invoke-Expression, a plain-text password, a bad verb, an empty catch and a syntax error."""
    bad = (b"gci C:\\ | % { $_ }\nsc config x\nInvoke-Expression $code\n"
           b"function Do-Thing { param([string]$Password) }\ntry { 1 } catch { }\nif ($x -eq { \n")
    found = "\n".join(problems(bad))
    for rule in ("PSAvoidUsingCmdletAliases: gci", "PSAvoidUsingCmdletAliases: %", "PSAvoidUsingCmdletAliases: sc",
                 "PSAvoidUsingInvokeExpression", "PSUseApprovedVerbs: Do-Thing", "PSAvoidUsingPlainTextForPassword",
                 "PSAvoidUsingEmptyCatchBlock", "syntax error"):
        assert rule in found, (rule, found)
    assert problems(b"sc.exe config sepm-exporter obj= 'EXAMPLE\\svc$'\n") == []  # the service tool, spelt out


def exporter_commands(markdown: str) -> list[list[str]]:
    """The arguments of each `sepm-exporter.exe ...` in the document's PowerShell and cmd blocks."""
    commands: list[list[str]] = []
    for block in re.findall(r"^```(?:powershell|bat)\n(.*?)^```", markdown, re.M | re.S):
        for match in re.finditer(r"sepm-exporter\.exe[\"']?[ \t]+([^\n]*)", block):
            lexer = shlex.shlex(match.group(1), posix=True)
            lexer.whitespace_split, lexer.escape, lexer.commenters = True, "", "#"
            commands.append(list(lexer))
    return commands


def test_every_exporter_command_in_the_windows_doc_parses() -> None:
    """The exporter's own parser accepts each command the doc gives (an unknown flag exits with an error)."""
    commands = exporter_commands((ROOT / "docs" / "windows.md").read_text(encoding="utf-8"))
    assert {c[0] for c in commands} >= {"check", "textfile"}, commands
    for argv in commands:
        if argv[0] in ("install", "uninstall", "start", "stop"):  # sepm-exporter-service.exe: WinSW's, not ours
            continue
        args = parse_args(argv)
        assert str(args.config) == r"C:\ProgramData\sepm-exporter\config.yml", argv


def test_the_windows_doc_names_sepm_paths_as_the_exporter_reads_them() -> None:
    from sepm_exporter.sepm.layout import KEYSTORE, OUTBOX_AGENT, SERVER_CERTIFICATE

    doc = (ROOT / "docs" / "windows.md").read_text(encoding="utf-8")
    for parts in (SERVER_CERTIFICATE, OUTBOX_AGENT, KEYSTORE):
        assert f'"$sepm\\{chr(92).join(parts)}"' in doc, parts  # the icacls grant for each
    assert "-LocalPort 10877" in doc and "--web.listen-address :10877" in (ROOT / "deploy" / "windows" / "sepm-exporter.xml").read_text()
    assert "scripts/bundle dist/sepm-exporter-win --platform win_amd64" in doc  # what tests/test_bundle.py runs
