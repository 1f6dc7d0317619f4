"""The package's import graph, built statically from the source: no cycles (function-local imports included), and
library modules never import from the user-facing facade ``xlhand/__init__``."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

# the installed package's folders (pyproject's package-dir)
ROOTS = {"xlhand": REPO / "xlhand", "xlhand.cli": REPO / "cli", "xlhand.plugins": REPO / "plugins",
         "xlhand.hands": REPO / "hands", "xlhand.templates": REPO / "templates"}


def modules() -> dict[str, Path]:
    out = {}
    for prefix, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if "{{" in str(rel) or any(p.startswith(".") for p in rel.parts):
                continue  # the plugin template's files are not part of the package's code
            out[".".join([prefix, *parts])] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every xlhand module ``name`` imports anywhere in its body (module level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        # a module's own ancestor packages are initialised before it in any case: not an edge
        found |= {t for t in targets if t in known and t != name and not name.startswith(t + ".")}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_graph_is_built_from_the_real_source():
    g = graph()
    assert {"xlhand.registry", "xlhand.hand.model", "xlhand.latent.space", "xlhand.cli.main"} <= set(g)
    assert "xlhand.hand.model" in g["xlhand.registry"]
    assert "xlhand.bundle.store" in g["xlhand.loading"]  # a function-local import would count too


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_library_modules_do_not_import_the_facade():
    """``xlhand/__init__`` is for users (the CLI is one); inside the library, import from the defining module."""
    offenders = sorted(n for n, deps in graph().items()
                       if "xlhand" in deps and n != "xlhand" and not n.startswith("xlhand.cli"))
    assert offenders == [], offenders


def test_the_lower_layers_do_not_reach_up():
    """hand/ and _util/ import nothing above them; runtime/ only hand/; latent/ not training/ or bundle/."""
    g = graph()
    rules = {
        "xlhand.hand.": ("xlhand.hand.", "xlhand._util.", "xlhand.errors"),
        "xlhand._util.": ("xlhand._util.", "xlhand.errors"),
        "xlhand.runtime.": ("xlhand.runtime.", "xlhand.hand.", "xlhand._util.", "xlhand.errors"),
        "xlhand.latent.": ("xlhand.latent.", "xlhand.hand.", "xlhand._util.", "xlhand.errors", "xlhand.registry"),
    }
    for prefix, allowed in rules.items():
        for name, deps in g.items():
            if name.startswith(prefix):
                bad = sorted(d for d in deps if not d.startswith(allowed) and d != prefix.rstrip("."))
                bad = [d for d in bad if not any(d == a.rstrip(".") for a in allowed)]
                assert bad == [], f"{name} imports {bad}"
