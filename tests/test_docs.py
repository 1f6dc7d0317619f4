"""Every hook has a docs section with its exact signature and a runnable example, and a test (datasette-style).

The meta-tests read the hookspecs from `plugins/hookspecs.py`, the sections from `docs/plugins.md` (a heading
``### `name(args)` ``) and test names from `tests/*.py` (a ``def test_...`` naming the hook). The examples in
each section are run here, registered as plugins.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import xlhand
from xlhand import registry
from xlhand.plugins import hookspecs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "plugins.md"
EXAMPLE_INIT = REPO / "examples" / "xlhand-tribot" / "xlhand_tribot" / "__init__.py"


def _hooks() -> dict[str, str]:
    """``{hook name: "name(args)"}`` for every hookspec."""
    return {
        name: f"{name}({', '.join(inspect.signature(fn).parameters)})"
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "xlhand_spec")
    }


def _sections() -> dict[str, str]:
    """``{heading signature: section text}`` for the ``### `...` `` sections of docs/plugins.md."""
    text = DOCS.read_text()
    parts = re.split(r"^### `([^`]+)`\s*$", text, flags=re.M)
    return {parts[i]: re.split(r"^##? ", parts[i + 1], flags=re.M)[0] for i in range(1, len(parts), 2)}


def _examples(name: str) -> list[str]:
    section = _sections()[_hooks()[name]]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _run_as_plugin(fresh_plugins, code: str, plugin_name: str, file: Path | None = None) -> types.ModuleType:
    module = types.ModuleType(plugin_name)
    module.__file__ = str(file or DOCS)
    exec(compile(code, f"{DOCS}:{plugin_name}", "exec"), module.__dict__)
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(module, name=plugin_name)
    return module


def test_hooks_are_found():
    assert set(_hooks()) >= {"register_hands", "register_drivers", "register_commands"}


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_has_a_docs_section_with_its_signature_and_an_example(name):
    signature = _hooks()[name]
    sections = _sections()
    assert signature in sections, f"docs/plugins.md needs a section headed ### `{signature}`"
    assert _examples(name), f"the docs section for {name} needs a ```python example"


def test_docs_document_no_hook_that_does_not_exist():
    documented = {heading.split("(")[0] for heading in _sections()}
    assert documented <= set(_hooks()), documented - set(_hooks())


# what reaches a hook from a test: the registry's getters or the plugin manager's per-plugin caller
_HOOK_CALLERS = {"registry", "list_hands", "load_hand", "list_drivers", "get_driver", "plugin_report", "call_each",
                 "invoke", "xlhand_cli"}


def _implements(node: ast.AST, hook: str) -> bool:
    """``node`` (a class or function) defines ``hook`` as a ``@hookimpl``."""
    return any(isinstance(f, ast.FunctionDef) and f.name == hook
               and any("hookimpl" in ast.unparse(d) for d in f.decorator_list) for f in ast.walk(node))


def _exercising_tests(hook: str) -> list[str]:
    """Test functions that name ``hook`` and exercise it: they bring an implementation (a ``@hookimpl`` of it in
    their body or in a class/function of their module they use, or the docs example of the hook) and call a path
    that reaches the hook."""
    found = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        impls = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and _implements(n, hook)}
        for fn in tree.body:
            if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_") and hook in fn.name):
                continue
            names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
            strings = {n.value for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            brings = _implements(fn, hook) or bool(names & impls) or hook in strings
            if brings and names & _HOOK_CALLERS:
                found.append(f"{path.name}::{fn.name}")
    return found


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_has_a_test(name):
    assert _exercising_tests(name), (f"no test in tests/ names the hook {name}, implements it and calls a path "
                                     "that reaches it")


def test_a_test_that_only_names_a_hook_does_not_count(tmp_path, monkeypatch):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_fake.py").write_text(
        "def test_register_hands_in_name_only():\n    assert True\n"
        "class P:\n    @hookimpl\n    def register_drivers(self, register):\n        pass\n"
        "def test_register_drivers_registers(fresh_plugins):\n    fresh_plugins.pm.register(P())\n"
        "    assert list_drivers()\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert _exercising_tests("register_hands") == []
    assert _exercising_tests("register_drivers") == ["test_fake.py::test_register_drivers_registers"]


# ---------------------------------------------------------------------------------------------------------------
# The examples, run


def test_register_hands_example_runs(fresh_plugins):
    """As the module of examples/xlhand-tribot, the docs example registers tribot's hand.toml."""
    (code,) = _examples("register_hands")
    _run_as_plugin(fresh_plugins, code, "docs-hands", file=EXAMPLE_INIT)
    entry = registry.registry().hands["tribot"]
    assert entry.plugin == "docs-hands" and registry.registry().errors == {}
    assert xlhand.load_hand("tribot").dof == 8


def test_register_drivers_example_runs(fresh_plugins):
    plugin, usage = _examples("register_drivers")
    _run_as_plugin(fresh_plugins, plugin, "docs-drivers")
    namespace: dict = {}
    exec(compile(usage, f"{DOCS}:usage", "exec"), namespace)
    hand = namespace["hand"]
    expected = ((hand.lower + hand.upper) / 2).double().numpy()
    assert namespace["applied"].tolist() == pytest.approx(expected.tolist())
    assert namespace["state"].q.tolist() == pytest.approx(expected.tolist())
    assert type(namespace["driver"]).__name__ == "LoopbackDriver" and not namespace["driver"].connected
    assert {r["name"]: r["drivers"] for r in registry.plugin_report()}["docs-drivers"] == ["loopback"]


def test_register_commands_example_runs(fresh_plugins):
    (code,) = _examples("register_commands")
    _run_as_plugin(fresh_plugins, code, "docs-commands")
    app = typer.Typer()

    @app.callback()
    def _root():
        """A stand-in for the xlhand app."""

    assert fresh_plugins.call_each("register_commands", app=app) == {}
    result = CliRunner().invoke(app, ["joints", "inspire"])
    assert result.exit_code == 0, result.output
    hand = xlhand.load_hand("inspire")
    assert result.output == f"inspire: {', '.join(hand.joint_names)}\n"
