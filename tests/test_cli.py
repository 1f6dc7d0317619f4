"""The `xlhand` command line: `hands list|show`, unknown names, `--help`, and plugin subcommands."""

from __future__ import annotations

import json
import tomllib
import types
from pathlib import Path

import pytest
import typer

from xlhand.cli import main as cli_main
from xlhand.cli.main import main
from xlhand.plugins.hookspecs import hookimpl

HANDS_DIR = Path(__file__).resolve().parents[1] / "hands"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_help_lists_the_command_groups(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for command in ("hands", "inspect", "plugins"):
        assert command in out


@pytest.mark.parametrize("name", ["ability", "inspire", "xhand", "paxini"])
def test_hands_show_json_matches_hand_toml(name, capsys):
    code, out, err = run(["hands", "show", name, "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    toml = tomllib.loads((HANDS_DIR / name / "hand.toml").read_text())
    assert data["name"] == name and data["plugin"] == "xlhand.hands"
    assert data["description"] == toml["description"]
    assert data["vendor"] == toml["vendor"]
    assert data["driver"] == toml.get("driver", "sim")
    tips = {t["role"]: t["link"] for t in data["fingertips"]}
    assert tips == {role: (v if isinstance(v, str) else v["link"]) for role, v in toml["fingertips"].items()}
    assert data["fingertips_source"] == "hand.toml" and data["canonical_frame"]["source"] == "hand.toml"
    assert data["canonical_frame"]["xyz"] == pytest.approx(toml["mount"]["xyz"])
    assert data["dof"] == sum(j["actuated"] for j in data["joints"]) == len(data["joint_names"])
    for j in data["joints"]:
        assert j["lower"] < j["upper"] or j["mimic"]
    assert len(data["kinematics_hash"]) == 16


def test_hands_show_human(capsys):
    code, out, _ = run(["hands", "show", "inspire"], capsys)
    assert code == 0
    assert "actuated DoF 6" in out and "Inspire Robots" in out and "index_proximal_joint" in out


def test_hands_list_human(capsys):
    code, out, _ = run(["hands", "list"], capsys)
    assert code == 0
    for name in ("ability", "inspire", "xhand", "paxini"):
        assert name in out


@pytest.mark.parametrize("args", [["hands", "show", "nosuchhand"], ["inspect", "nosuchhand"]])
def test_unknown_hand_name_is_one_line(args, capsys):
    code, out, err = run(args, capsys)
    assert code == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: no hand named 'nosuchhand' is registered (registered: ")
    assert "inspire" in line


def test_plugin_adds_a_subcommand_and_a_raising_one_is_reported(fresh_plugins, monkeypatch, capsys):
    monkeypatch.setattr(cli_main.app, "registered_commands", list(cli_main.app.registered_commands))
    monkeypatch.setattr(cli_main, "_plugin_commands_added", False)  # plugins add commands once per process

    def add_hello(app):
        @app.command("hello-test")
        def hello(name: str = typer.Argument("hand")) -> None:
            """Say hello."""
            print(f"hello {name}")

    def broken(app):
        raise RuntimeError("cannot add commands")

    good = types.ModuleType("xlhand_hello")
    good.register_commands = hookimpl(add_hello)
    bad = types.ModuleType("xlhand_badcommands")
    bad.register_commands = hookimpl(broken)
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(good, name="xlhand_hello")
    fresh_plugins.pm.register(bad, name="xlhand_badcommands")

    code, out, err = run(["hello-test", "world"], capsys)
    assert code == 0, err
    assert out == "hello world\n"
    code, out, _ = run(["plugins", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["xlhand_badcommands"]["errors"] == ["register_commands raised RuntimeError: cannot add commands"]
    assert rows["xlhand_hello"]["hooks"] == ["register_commands"] and rows["xlhand_hello"]["errors"] == []


@pytest.mark.parametrize("args, needle", [
    (["onboard", "inspire", "--steps", "-1"], "--steps"),
    (["onboard", "inspire", "--steps", "0"], "--steps"),
    (["pretrain", "--steps", "-5", "-o", "x.safetensors"], "--steps"),
    (["eval", "--n", "0"], "--n"),
    (["render", "hand", "inspire", "--size", "0"], "--size"),
    (["render", "interpolate", "--hands", "inspire", "--fps", "0", "-o", "x.gif"], "--fps"),
    (["render", "interpolate", "--hands", "inspire", "--frames", "0", "-o", "x.gif"], "--frames"),
    (["policy", "eval", "--episodes", "-10"], "--episodes"),
    (["policy", "eval", "--execute", "65"], "--execute"),
    (["sim", "check", "inspire", "--seconds", "0"], "--seconds"),
    (["onboard", "inspire", "--no-such-option"], "--no-such-option"),
    (["no-such-command"], "no-such-command"),
    (["onboard"], "TARGET"),
])
def test_bad_options_are_one_line_errors_before_any_work(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle.lower() in lines[0].lower(), err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_bare_group_prints_its_help(capsys):
    code, out, err = run(["bundle"], capsys)
    assert code == 2 and "create" in out and not err.strip()
