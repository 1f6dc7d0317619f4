"""Regressions from review: TOML strings outside the BMP, one plug path for library and CLI, honest dependency
bounds (Python for tomllib, yourdfpy for the private ``URDF._parse_robot``)."""

from __future__ import annotations

import importlib.metadata
import json
import operator
import re
import shutil
import tomllib

import pytest
from conftest import REPO

import xlhand
from xlhand.bundle.store import create_bundle, load_bundle_space, plug
from xlhand.cli.main import main
from xlhand.hand.spec import load_spec
from xlhand.latent.adapter_file import read_adapter
from xlhand.latent.space import Space
from xlhand.packaging.handtoml import toml_str
from xlhand.packaging.newhand import new_hand
from xlhand.training.config import FitConfig
from xlhand.training.onboard import onboard

QUICK = FitConfig(steps=3, batch=32, templates=16, pool=64, checkpoint_every=3)
ABILITY_TIPS = {"thumb": "thumb_tip", "index": "index_tip", "middle": "middle_tip", "ring": "ring_tip",
                "little": "pinky_tip"}


# 1. descriptions outside the BMP ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Tribot 🖐 hand", 'a "quoted" \\ back\tslash\n\x01\x7f', "ünïcödé ✋🏽"])
def test_toml_strings_round_trip(text):
    assert tomllib.loads(f"k = {toml_str(text)}")["k"] == text


def test_new_hand_with_an_emoji_description_loads_and_installs(tmp_path):
    description = "Tribot 🖐 hand"
    result = new_hand("tribot", REPO / "hands" / "inspire" / "inspire.urdf", tmp_path, description=description)
    toml = result.path / result.package / "hand" / "hand.toml"
    assert "\\ud83d" not in toml.read_text(encoding="utf-8")
    assert load_spec(toml).description == description
    assert xlhand.load_hand(toml).spec.description == description
    pyproject = tomllib.loads((result.path / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description


def test_new_hand_description_with_control_characters_stays_valid(tmp_path):
    result = new_hand("tribot", REPO / "hands" / "inspire" / "inspire.urdf", tmp_path,
                      description="Tri\x01bot\x7f 🖐 hand")
    pyproject = tomllib.loads((result.path / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == "Tri bot 🖐 hand"
    assert load_spec(result.path / result.package / "hand" / "hand.toml").description == "Tri bot 🖐 hand"


# 2. library plug == CLI plug --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bare_adapter(tmp_path_factory):
    """An adapter for a bare URDF onboarded under an explicit name and fingertip map (not the URDF's own)."""
    root = tmp_path_factory.mktemp("review")
    space = root / "base.safetensors"
    Space.new([xlhand.load_hand("inspire"), xlhand.load_hand("xhand")], seed=0).save(space)
    urdf_dir = root / "bare"
    urdf_dir.mkdir()
    shutil.copyfile(REPO / "hands" / "ability" / "ability.urdf", urdf_dir / "ability.urdf")
    adapter = root / "myability.safetensors"
    onboard(urdf_dir / "ability.urdf", name="myability", fingertips=ABILITY_TIPS, space=space, out=adapter,
            config=QUICK, report_n=100, oracle=False)
    return space, adapter


def test_library_plug_without_a_hand_uses_the_recorded_name_and_fingertips(bare_adapter, tmp_path):
    space, adapter = bare_adapter
    bundle = tmp_path / "bundle"
    create_bundle(bundle, space)
    config = plug(bundle, adapter)  # no hand: rebuilt from what the adapter records
    assert config["hands"]["myability"]["kinematics"] == {"hand_toml": "hands/myability/hand.toml"}
    loaded = load_bundle_space(bundle)
    assert "myability" in loaded.hands
    assert {role: tip.link for role, tip in loaded.hand("myability").tips.items()} == ABILITY_TIPS
    _, meta = read_adapter(adapter)
    assert meta["record"]["source"]["name"] == "myability"


def test_cli_plug_is_the_library_plug(bare_adapter, tmp_path, capsys):
    space, adapter = bare_adapter
    lib, cli = tmp_path / "lib", tmp_path / "cli"
    create_bundle(lib, space)
    create_bundle(cli, space)
    plug(lib, adapter)
    with pytest.raises(SystemExit) as exit_:
        main(["bundle", "plug", str(cli), str(adapter)])
    assert exit_.value.code == 0
    assert "plugged myability" in capsys.readouterr().out
    assert json.loads((lib / "config.json").read_text()) == json.loads((cli / "config.json").read_text())
    assert (lib / "hands/myability/hand.toml").read_text() == (cli / "hands/myability/hand.toml").read_text()


# 3./4. dependency bounds -----------------------------------------------------------------------------------------

def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
        "!=": operator.ne}


def _admits(specifier: str, version: tuple[int, ...]) -> bool:
    clauses = [c.strip() for c in specifier.split(",") if c.strip()]
    assert clauses, specifier
    for clause in clauses:
        m = re.fullmatch(r"(>=|<=|==|!=|>|<)\s*([0-9.]+)", clause)
        assert m, f"unsupported specifier clause {clause!r}"
        bound = _version(m[2])
        n = max(len(bound), len(version))
        if not _OPS[m[1]](version + (0,) * (n - len(version)), bound + (0,) * (n - len(bound))):
            return False
    return True


def test_requires_python_admits_no_version_without_tomllib():
    spec = _pyproject()["project"]["requires-python"]
    assert not any(_admits(spec, (3, minor, patch)) for minor in range(11) for patch in range(30)), spec
    assert _admits(spec, (3, 11, 0))


def test_yourdfpy_is_bounded_to_a_range_with_the_private_parse_robot():
    import yourdfpy

    deps = _pyproject()["project"]["dependencies"]
    (req,) = [d for d in deps if re.match(r"yourdfpy\b", d)]
    specifier = req[len("yourdfpy"):]
    assert "<" in specifier, "yourdfpy needs an upper bound: xlhand uses the private URDF._parse_robot"
    installed = importlib.metadata.version("yourdfpy")
    assert _admits(specifier, _version(installed)), (installed, specifier)
    assert callable(getattr(yourdfpy.URDF, "_parse_robot", None)), "yourdfpy dropped URDF._parse_robot"
