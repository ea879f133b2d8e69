"""The layout holds: packages import only downstream of the flow, and no module imports itself back.

``docs/architecture.md`` draws the flow; this test is its guard. Every ``import`` in the
package counts, also the ones inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit  # the fast lane (make check)

ROOT = Path(__file__).resolve().parent.parent / "announcer"

# package -> the packages it may import (besides itself). Read top-down: each may use those above it.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "text": {"core"},
    "audio": {"core"},
    "engines": {"core", "audio", "text"},
    "sinks": {"core", "audio"},
    "schedule": {"core"},
    "config": {"core", "audio", "engines", "sinks", "schedule"},
    "spool": {"core"},
    "intake": {"core", "audio", "config", "spool", "schedule"},
    "playback": {"core", "audio", "text", "engines", "sinks", "config", "spool"},
    "mqtt": {"core", "config", "intake"},
    "integrations": {"core", "audio", "text", "engines", "config", "spool", "intake", "playback", "mqtt", "schedule"},
    "http": {"core", "audio", "engines", "config", "spool", "intake", "playback", "schedule"},
    "service": {
        "core",
        "audio",
        "text",
        "engines",
        "sinks",
        "schedule",
        "config",
        "spool",
        "intake",
        "playback",
        "mqtt",
        "integrations",
        "http",
        "voices",
    },
    "voices": {"core"},  # set-up time only: installs voice files, never runs in the daemon
    "workers": set(),  # a standalone file that runs in its own Python environment
}
TOP_LEVEL = {"__init__", "__main__", "wyoming_server"}  # the version, and two command entry points


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """Modules of announcer that ``name`` imports, wherever the import statement sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and _is_type_checking(block.test)
        for n in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:  # ``if TYPE_CHECKING:`` imports are for the type checker, never run
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("announcer")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("announcer"):
                continue
            mods = modules()
            for alias in node.names:  # ``from . import discovery`` imports a module, not a name
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in mods else target)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_says_what_it_owns() -> None:
    for init in ROOT.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 80 and "May import" in doc, f"{init}: say what the package owns and what it may import"


def test_packages_import_only_what_the_flow_allows() -> None:
    wrong = []
    for name, path in modules().items():
        pkg = package_of(name)
        if pkg in ("",) or name.rpartition(".")[2] in TOP_LEVEL and name.count(".") == 1:
            continue
        for target in imports(name, path):
            other = package_of(target)
            if other and other != pkg and other not in ALLOWED[pkg]:
                wrong.append(f"{name} imports {target} ({pkg} may not use {other})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    mods = modules()
    graph = defaultdict(set)
    for name, path in mods.items():
        graph[name] = {
            t for t in imports(name, path) if t in mods and t != name and not (t == name.rpartition(".")[0])
        }  # a module may read its own package's __init__
    seen: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if seen.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in seen:
                visit(nxt, stack)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(m for m in modules() if not m.endswith("__init__")))
def test_modules_stay_small(module: str) -> None:
    """A file past ~400 lines holds two jobs (STYLE.md). The Sambert worker is one copyable file on purpose."""
    if module == "announcer.workers.sambert":
        return
    lines = modules()[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 440, f"{module}: {lines} lines (~400 plus its rules written out: split it by responsibility)"
