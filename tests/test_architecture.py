"""The layering is a test, not a wish: import-linter's contracts hold, and no module imports itself back."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "exporter" / "sepm_exporter"


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative: linear in the graph)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, set())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_between_modules() -> None:
    graph = grimp.build_graph("sepm_exporter")
    modules = {m for m in graph.modules if m.startswith("sepm_exporter.")}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules and not _is_package_of(i, m)}
             for m in modules}
    assert _cycles(edges) == []


def _is_package_of(package: str, module: str) -> bool:
    """A module importing its own package's __init__ (for a version string) is no circle."""
    return module.startswith(package + ".")


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _classes(tree: ast.Module) -> list[tuple[str, int]]:
    return [(node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
            for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def test_no_class_is_over_300_lines() -> None:
    """A class that outgrows a screenful of screens holds more than one job (the runtime did once)."""
    sizes = {f"{path.relative_to(PACKAGE)}:{name}": lines for path in PACKAGE.rglob("*.py")
             for name, lines in _classes(ast.parse(path.read_text(encoding="utf-8")))}
    assert sizes, "no classes found: the walk looks in the wrong place"
    assert {where: lines for where, lines in sizes.items() if lines > 300} == {}


def test_a_class_over_the_limit_would_be_caught() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(301))
    assert _classes(ast.parse(f"class Big:\n{body}\n")) == [("Big", 302)]


def test_the_command_line_imports_only_settings_and_commands() -> None:
    """cli.py parses and dispatches; the wiring lives in assembly.py and commands/ (contract in pyproject too)."""
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    ours = {name for name in imported if name.startswith("sepm_exporter")}
    allowed = ("sepm_exporter.settings", "sepm_exporter.commands", "sepm_exporter.lab.commands", "sepm_exporter.serving.healthcheck")
    assert ours and {name for name in ours if name != "sepm_exporter" and not name.startswith(allowed)} == set()


def test_no_backup_files_are_tracked() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked")
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.splitlines()
    backups = [name for name in tracked if name.endswith((".orig", ".rej", ".bak", "~", ".swp")) or "/#" in name]
    assert tracked and backups == []


def test_each_runtime_room_is_under_300_lines() -> None:
    """The runtime's rooms stay small enough to read whole; the writer grows by new rooms, not by length."""
    rooms = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in (PACKAGE / "runtime").glob("*.py")}
    assert {"exporter.py", "client_book.py", "history_store.py", "publisher.py", "report.py"} <= rooms.keys()
    assert {name: lines for name, lines in rooms.items() if lines > 300} == {}
