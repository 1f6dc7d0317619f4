"""Every hook has a docs section with its exact signature and a runnable example, and a test (datasette-style).

The meta-tests read the hookspecs from `plugins/hookspecs.py`, the sections from `docs/plugins.md` (a heading
``### `name(args)` ``) and test names from `tests/*.py` (a ``def test_...`` naming the hook). The examples in
each section are run here, registered as plugins.
"""

from __future__ import annotations

import inspect
import re
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


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_has_a_test(name):
    pattern = re.compile(rf"^def (test_\w*{name}\w*)\(", re.M)
    found = [m for path in sorted((REPO / "tests").glob("test_*.py")) for m in pattern.findall(path.read_text())]
    assert found, f"no test function in tests/ names the hook {name}"


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
