"""Hands as plugins: built-in and third-party hands through the same `register_hands` hook, faulty plugins
reported (never fatal), entry-point discovery with the `XLHAND_LOAD_PLUGINS` allow-list, and hook tracing."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import TINY_TOML, subprocess_env, write_tiny_hand, xlhand_script

import xlhand
from xlhand import registry
from xlhand.cli.main import main
from xlhand.plugins.hookspecs import hookimpl

BUILTIN = {"ability", "inspire", "xhand", "paxini"}


def cli_json(args: list[str], capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    return json.loads(out)


def hand_plugin(name: str, register_hands) -> types.ModuleType:
    """A plugin module object whose ``register_hands`` hook is ``register_hands``."""
    module = types.ModuleType(name)
    module.register_hands = hookimpl(register_hands)
    return module


def add_plugins(manager, *modules: types.ModuleType) -> None:
    manager.load_plugins()
    for module in modules:
        manager.pm.register(module, name=module.__name__)
    registry.reset()


def plugin_rows(capsys) -> dict[str, dict]:
    return {row["name"]: row for row in cli_json(["plugins"], capsys)}


# -------------------------------------------------------------------------------------------------- built-in
def test_builtin_hands_are_listed_through_the_hook(capsys):
    rows = cli_json(["hands", "list"], capsys)
    assert {r["name"] for r in rows} == BUILTIN
    assert {r["plugin"] for r in rows} == {"xlhand.hands"}
    for r in rows:
        assert Path(r["hand_toml"]).name == "hand.toml" and Path(r["hand_toml"]).parent.name == r["name"]
    assert set(xlhand.list_hands()) == BUILTIN
    builtin = plugin_rows(capsys)["xlhand.hands"]
    assert builtin["builtin"] is True
    assert "register_hands" in builtin["hooks"]
    assert set(builtin["hands"]) == BUILTIN and builtin["errors"] == []


def test_hands_list_prints_nothing_on_stderr_without_tracing(capsys):
    cli_json(["hands", "list"], capsys)  # asserts exit 0
    with pytest.raises(SystemExit):
        main(["hands", "list"])
    out, err = capsys.readouterr()
    assert err == ""
    for name in BUILTIN:
        assert name in out


# ------------------------------------------------------------------------------------------ a third-party hand
def test_third_party_hand_is_listed_and_loads(tmp_path, fresh_plugins, capsys):
    toml = write_tiny_hand(tmp_path / "testhand", name="testhand")
    add_plugins(fresh_plugins, hand_plugin("xlhand_testhand", lambda register: register(toml)))

    rows = {r["name"]: r for r in cli_json(["hands", "list"], capsys)}
    assert set(rows) == BUILTIN | {"testhand"}
    assert rows["testhand"]["plugin"] == "xlhand_testhand"
    assert rows["testhand"]["description"] == "a two-finger test hand"
    assert rows["testhand"]["hand_toml"] == str(toml)

    hand = xlhand.load_hand("testhand")
    assert hand.name == "testhand" and hand.dof == 3 and hand.fingers == ["thumb", "index"]
    assert "testhand" in xlhand.list_hands()
    shown = cli_json(["hands", "show", "testhand"], capsys)
    assert shown["plugin"] == "xlhand_testhand" and shown["dof"] == 3

    row = plugin_rows(capsys)["xlhand_testhand"]
    assert row["hooks"] == ["register_hands"] and row["hands"] == ["testhand"] and row["errors"] == []
    assert row["builtin"] is False


def test_a_plugin_may_register_a_handspec(tmp_path, fresh_plugins):
    toml = write_tiny_hand(tmp_path / "spec", name="spechand")
    add_plugins(fresh_plugins, hand_plugin("xlhand_spechand", lambda register: register(xlhand.load_spec(toml))))
    assert xlhand.load_hand("spechand").dof == 3


# -------------------------------------------------------------------------------------------- faulty plugins
def test_faulty_plugins_are_reported_and_hands_list_keeps_working(tmp_path, fresh_plugins, capsys, monkeypatch):
    def raising(register):
        raise RuntimeError("vendor SDK not found")

    dup = write_tiny_hand(tmp_path / "dup", name="inspire")
    bad = write_tiny_hand(tmp_path / "bad", toml=TINY_TOML.format(name="badhand") + "\n[vendor]\nwarranty = 2\n")
    good = write_tiny_hand(tmp_path / "good", name="goodhand")

    def malformed(register):
        register(bad)
        register(good)  # a plugin's good hands survive its bad ones

    add_plugins(
        fresh_plugins,
        hand_plugin("xlhand_raises", raising),
        hand_plugin("xlhand_duplicate", lambda register: register(dup)),
        hand_plugin("xlhand_malformed", malformed),
        hand_plugin("xlhand_wrongtype", lambda register: register(42)),
    )

    rows = plugin_rows(capsys)
    assert rows["xlhand_raises"]["errors"] == ["register_hands raised RuntimeError: vendor SDK not found"]
    assert rows["xlhand_duplicate"]["errors"] == [
        "duplicate hand name 'inspire' (already registered by xlhand.hands)"
    ]
    (err,) = rows["xlhand_malformed"]["errors"]
    assert err.startswith("malformed hand: ") and f"{bad}: vendor.warranty: expected a string" in err
    assert rows["xlhand_malformed"]["hands"] == ["goodhand"]
    (err,) = rows["xlhand_wrongtype"]["errors"]
    assert "register() takes a hand.toml path or a HandSpec, got int" in err
    assert rows["xlhand.hands"]["errors"] == []

    listed = {r["name"]: r["plugin"] for r in cli_json(["hands", "list"], capsys)}
    assert listed == {**{name: "xlhand.hands" for name in BUILTIN}, "goodhand": "xlhand_malformed"}
    # the duplicate did not replace the built-in hand
    assert xlhand.load_hand("inspire").dof == 6
    # people see the errors too (a wide console so that rich does not wrap the cells)
    from xlhand.cli.output import console

    monkeypatch.setattr(console, "_width", 250)
    with pytest.raises(SystemExit) as exit_info:
        main(["plugins"])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    assert "register_hands raised RuntimeError: vendor SDK not found" in out
    assert "duplicate hand name 'inspire'" in out


# ---------------------------------------------------------------------------------- entry points (installed)
def fake_distribution(root: Path, dist: str, entry: str, module: str, source: str) -> None:
    """An installed distribution ``dist`` with entry point ``entry = module`` in group `xlhand`, on ``root``."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[xlhand]\n{entry} = {module}\n")
    (root / f"{module}.py").write_text(source)


@pytest.fixture
def installed(tmp_path, monkeypatch, fresh_plugins):
    """Two fake installed plugin distributions: `xlhand-goodtest` (a hand) and `xlhand-brokentest` (import fails)."""
    site = tmp_path / "site"
    toml = write_tiny_hand(tmp_path / "goodtest_hand", name="goodtest")
    fake_distribution(
        site, "xlhand-goodtest", "goodtest", "xlhand_goodtest_plugin",
        "from xlhand.plugins.hookspecs import hookimpl\n\n"
        f"@hookimpl\ndef register_hands(register):\n    register({str(toml)!r})\n",
    )
    fake_distribution(
        site, "xlhand-brokentest", "brokentest", "xlhand_brokentest_plugin",
        'raise ImportError("needs the vendor SDK")\n',
    )
    monkeypatch.syspath_prepend(str(site))
    yield fresh_plugins
    for module in ("xlhand_goodtest_plugin", "xlhand_brokentest_plugin"):
        sys.modules.pop(module, None)


def test_entry_point_that_fails_to_import_is_reported(installed, monkeypatch, capsys):
    monkeypatch.delenv("XLHAND_LOAD_PLUGINS")
    rows = plugin_rows(capsys)
    assert rows["brokentest"]["errors"] == ["failed to load: ImportError: needs the vendor SDK"]
    assert rows["brokentest"]["version"] == "0.1"
    assert rows["goodtest"]["hands"] == ["goodtest"] and rows["goodtest"]["errors"] == []
    assert rows["goodtest"]["version"] == "0.1"

    listed = {r["name"]: r["plugin"] for r in cli_json(["hands", "list"], capsys)}
    assert listed["goodtest"] == "goodtest"
    assert BUILTIN <= set(listed)
    assert xlhand.load_hand("goodtest").dof == 3


@pytest.mark.parametrize(
    "allow, loaded, failed",
    [
        ("goodtest", {"goodtest"}, set()),  # by entry-point name
        ("xlhand-brokentest", set(), {"brokentest"}),  # by distribution name
        (" goodtest , brokentest ", {"goodtest"}, {"brokentest"}),
        ("", set(), set()),  # none: only the built-in plugins
    ],
)
def test_load_plugins_allow_list(installed, monkeypatch, capsys, allow, loaded, failed):
    monkeypatch.setenv("XLHAND_LOAD_PLUGINS", allow)
    manager = installed
    manager.load_plugins()
    names = {name for name, _ in manager.pm.list_name_plugin()}
    assert names == set(manager.DEFAULT_PLUGINS) | loaded
    assert set(manager.load_errors) == failed
    hands = {r["name"] for r in cli_json(["hands", "list"], capsys)}
    assert hands == BUILTIN | ({"goodtest"} if "goodtest" in loaded else set())


# ------------------------------------------------------------------------------------------------ tracing
def test_trace_plugins_prints_hook_calls_to_stderr():
    proc = subprocess.run(
        xlhand_script() + ["hands", "list", "--json"],
        capture_output=True, text=True, timeout=120, env=subprocess_env(XLHAND_TRACE_PLUGINS="1"),
    )
    assert proc.returncode == 0, proc.stderr
    assert {r["name"] for r in json.loads(proc.stdout)} == BUILTIN  # stdout stays clean JSON
    assert "register_hands [hook]" in proc.stderr
    assert "finish register_hands" in proc.stderr
