"""CLI conventions: `--version`, a `--help` that does not import torch, and `--json` meaning JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import pytest
from conftest import subprocess_env, xlhand_script

from xlhand.cli.main import main


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_importing_the_cli_does_not_import_torch():
    code = "import xlhand, xlhand.cli.main, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env=subprocess_env())
    assert out.stdout.strip() == "False"


def test_help_does_not_import_torch():
    code = ("import sys\nfrom xlhand.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(str('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env=subprocess_env())
    assert "pretrain" in out.stdout and out.stderr.strip() == "False"


def test_version_is_the_installed_metadata_version():
    out = subprocess.run(xlhand_script() + ["--version"], capture_output=True, text=True, check=True, timeout=120,
                         env=subprocess_env())
    assert out.stdout == f"xlhand {version('xlhand')}\n"


def test_new_is_listed_with_its_subcommand(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "new" in out.split()
    code, out, _ = run(["new", "--help"], capsys)
    assert code == 0 and "hand" in out.split()


@pytest.mark.parametrize("args", [
    ["hands", "list", "--json"],
    ["hands", "show", "inspire", "--json"],
    ["plugins", "--json"],
    ["spaces", "list", "--json"],
    ["inspect", "inspire", "--json"],
])
def test_json_is_json_on_stdout(args, capsys):
    code, out, err = run(args, capsys)
    assert code == 0, err
    json.loads(out)


def test_pretrain_json(tmp_path, capsys):
    out_file = tmp_path / "s.safetensors"
    code, out, err = run(["pretrain", "--hands", "xhand,inspire", "--steps", "2", "--json", "-o", str(out_file)],
                         capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["path"] == str(out_file) and out_file.exists()
    assert data["hands"] == ["xhand", "inspire"] and len(data["fingerprint"]) >= 16
    assert data["steps"] == 2 and data["seconds"] >= 0
    assert "wrote" in err  # the human line goes to stderr


def test_eval_json_and_report(tmp_path, capsys):
    space = tmp_path / "s.safetensors"
    assert run(["pretrain", "--hands", "xhand,inspire", "--steps", "2", "-o", str(space)], capsys)[0] == 0
    report = tmp_path / "eval.json"
    code, out, err = run(["eval", "--space", str(space), "--n", "200", "--no-oracle", "--json", "--report",
                          str(report)], capsys)
    assert code == 0, err
    assert json.loads(out) == json.loads(report.read_text())


def test_import_dexlatent_json(tmp_path, capsys):
    from conftest import SHARED, require_shared

    ckpt = require_shared(SHARED / "reference" / "dexlatent" / "Checkpoints" / "20260311_225425"
                          / "checkpoint_epoch_1000.pt")
    out_file = tmp_path / "d.safetensors"
    code, out, err = run(["import", "dexlatent", str(ckpt), "-o", str(out_file), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["path"] == str(out_file) and data["hands"] and data["fingerprint"]


def _onboard_tiny(tmp_path, capsys, *extra: str):
    """A 2-step space of two built-in hands and the tiny test hand onboarded into it (20 steps, no oracle)."""
    from conftest import TINY_URDF

    space = tmp_path / "s.safetensors"
    assert run(["pretrain", "--hands", "xhand,inspire", "--steps", "2", "-o", str(space)], capsys)[0] == 0
    urdf = tmp_path / "tiny.urdf"
    urdf.write_text(TINY_URDF)
    adapter = tmp_path / "tiny.adapter.safetensors"
    result = run(["onboard", str(urdf), "--space", str(space), "--steps", "20", "--no-oracle", *extra,
                  "-o", str(adapter)], capsys)
    return space, adapter, result


def test_onboard_json(tmp_path, capsys):
    report = tmp_path / "report.json"
    _, _, (code, out, err) = _onboard_tiny(tmp_path, capsys, "--json", "--report", str(report))
    assert code == 0, err
    data = json.loads(out)
    assert data["adapter"] == str(tmp_path / "tiny.adapter.safetensors") and data["bundle"] is None
    assert data["report"] == json.loads(report.read_text())


def test_bundle_create_and_plug_json(tmp_path, capsys):
    space, adapter, (code, _, err) = _onboard_tiny(tmp_path, capsys)
    assert code == 0, err
    bundle = tmp_path / "b"
    code, out, err = run(["bundle", "create", str(bundle), "--space", str(space), "--json"], capsys)
    assert code == 0, err
    created = json.loads(out)
    assert created["path"] == str(bundle) and created["format"] == "xlhand-bundle"
    assert created["space_fingerprint"] == json.loads((bundle / "config.json").read_text())["space_fingerprint"]
    code, out, err = run(["bundle", "plug", str(bundle), str(adapter), "--json"], capsys)
    assert code == 0, err
    plugged = json.loads(out)
    assert set(plugged["hands"]) == {"xhand", "inspire", "tiny"}
    assert plugged["hands"] == json.loads((bundle / "config.json").read_text())["hands"]
