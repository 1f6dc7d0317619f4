"""`xlhand new hand`: a URDF becomes a pip package whose installed hand is exactly the inspected one.

- A hand folder with meshes addressed every way (`package://`, relative, `file://` absolute, a texture, an OBJ's
  material library naming a texture) is copied with exactly the files it references, paths rewritten.
- Escaping paths, bad names and existing folders are refused with one-line errors, leaving nothing behind.
- Every hand in `../shared/fixtures/hands/` gives a package whose `hand.toml` reproduces the detected fingertips and
  mount, and which installs into a fresh environment where `xlhand inspect` accepts it.
- `examples/xlhand-tribot` is exactly what the template makes, and is found through its entry point.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURE_HANDS, require_shared
from lxml import etree
from plugin_venv import PluginVenv, require_build_backend

import xlhand
from xlhand.cli.main import main
from xlhand.hand.describe import describe_hand
from xlhand.errors import XlhandError
from xlhand.hand.model import hand_from_spec, spec_for_urdf
from xlhand.hand.spec import load_spec
from xlhand.packaging.newhand import new_hand

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "xlhand-tribot"

STL = "solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 0.01 0 0\nvertex 0 0.01 0\nendloop\nendfacet\nendsolid t\n"


def _urdf(palm: str, finger: str, finger_abs: str, collision: str, texture: str) -> str:
    def finger_xml(i: int, y: float, mesh: str) -> str:
        return f"""
  <link name="f{i}"><visual><geometry><mesh filename="{mesh}"/></geometry></visual></link>
  <link name="f{i}_tip"/>
  <joint name="f{i}_joint" type="revolute"><parent link="palm"/><child link="f{i}"/>
    <origin xyz="0 {y} 0.08"/><axis xyz="0 1 0"/><limit lower="0" upper="1.5" effort="1" velocity="1"/></joint>
  <joint name="f{i}_tip_joint" type="fixed"><parent link="f{i}"/><child link="f{i}_tip"/><origin xyz="0 0 0.05"/></joint>"""

    return f"""<?xml version="1.0"?>
<robot name="myhand">
  <!-- a comment that must survive the copy -->
  <material name="skin"><texture filename="{texture}"/></material>
  <link name="palm">
    <visual><geometry><mesh filename="{palm}"/></geometry><material name="skin"/></visual>
    <collision><geometry><mesh filename="{collision}"/></geometry></collision>
  </link>{finger_xml(1, 0.02, finger)}{finger_xml(2, -0.02, finger_abs)}
</robot>
"""


@pytest.fixture
def mesh_hand(tmp_path) -> Path:
    """``myhand/robot.urdf`` with meshes, a material library, a texture, a licence and an unrelated file."""
    root = tmp_path / "src" / "myhand"
    (root / "meshes" / "visual").mkdir(parents=True)
    (root / "meshes" / "collision").mkdir()
    (root / "textures").mkdir()
    (root / "meshes" / "visual" / "palm.obj").write_text("mtllib palm.mtl\nv 0 0 0\nv 0.01 0 0\nv 0 0.01 0\nf 1 2 3\n")
    (root / "meshes" / "visual" / "palm.mtl").write_text("newmtl skin\nKd 1 1 1\nmap_Kd ../../textures/skin.png\n")
    (root / "textures" / "skin.png").write_bytes(b"\x89PNG not really")
    (root / "meshes" / "visual" / "finger.stl").write_text(STL)
    (root / "meshes" / "collision" / "tip.stl").write_text(STL)
    (root / "LICENSE").write_text("MIT\n")
    (root / "notes.txt").write_text("not referenced, not copied\n")
    (root / "robot.urdf").write_text(_urdf(
        palm="package://myhand/meshes/visual/palm.obj",
        finger="meshes/visual/finger.stl",
        finger_abs=f"file://{root}/meshes/visual/finger.stl",
        collision="./meshes/collision/../collision/tip.stl",
        texture="package://myhand/textures/skin.png",
    ))
    return root / "robot.urdf"


def test_new_hand_copies_what_the_urdf_references_and_rewrites_paths(mesh_hand, tmp_path):
    out = tmp_path / "out"
    result = new_hand("myhand", mesh_hand, out)
    hand_dir = "xlhand_myhand/hand/"
    assert result.path == out / "xlhand-myhand"
    assert [f for f in result.files if f.startswith(hand_dir)] == sorted(hand_dir + f for f in [
        "LICENSE", "hand.toml", "robot.urdf", "meshes/collision/tip.stl", "meshes/visual/finger.stl",
        "meshes/visual/palm.mtl", "meshes/visual/palm.obj", "textures/skin.png",
    ])
    assert result.meshes == {
        "package://myhand/meshes/visual/palm.obj": "meshes/visual/palm.obj",
        f"file://{mesh_hand.parent}/meshes/visual/finger.stl": "meshes/visual/finger.stl",
        "./meshes/collision/../collision/tip.stl": "meshes/collision/tip.stl",
        "package://myhand/textures/skin.png": "textures/skin.png",
    }
    urdf = result.path / hand_dir / "robot.urdf"
    doc = etree.parse(str(urdf))
    assert sorted(el.get("filename") for el in doc.iter("mesh", "texture")) == [
        "meshes/collision/tip.stl", "meshes/visual/finger.stl", "meshes/visual/finger.stl",
        "meshes/visual/palm.obj", "textures/skin.png"]
    assert "a comment that must survive the copy" in urdf.read_text()
    assert (result.path / hand_dir / "textures/skin.png").read_bytes() == b"\x89PNG not really"
    # the package's hand.toml loads, and its meshes resolve inside the package
    hand = xlhand.load_hand(result.path / hand_dir / "hand.toml")
    assert {v.mesh for v in hand.robot.visuals} == {
        (result.path / hand_dir / p).resolve() for p in ("meshes/visual/palm.obj", "meshes/visual/finger.stl")}
    assert hand.tips_source == "hand.toml" and hand.mount_source == "hand.toml"
    assert result.notes == []
    assert list(out.iterdir()) == [result.path]  # no staging folder left behind


@pytest.mark.parametrize("field, value, culprit", [
    ("palm", "../outside.obj", "mesh path '../outside.obj' escapes"),  # refused when the URDF is read
    ("collision", "package://myhand/../../outside.stl", "mesh path 'package://myhand/../../outside.stl' escapes"),
    ("mtl", "mtllib ../../../outside.mtl", "'../../../outside.mtl' (named by meshes/visual/palm.obj) escapes"),
])
def test_paths_leaving_the_hand_folder_are_refused(mesh_hand, tmp_path, field, value, culprit):
    (mesh_hand.parent.parent / "outside.obj").write_text("v 0 0 0\n")
    if field == "mtl":
        (mesh_hand.parent / "meshes/visual/palm.obj").write_text(value + "\nv 0 0 0\n")
    else:
        text = mesh_hand.read_text()
        old = {"palm": "package://myhand/meshes/visual/palm.obj",
               "collision": "./meshes/collision/../collision/tip.stl"}[field]
        mesh_hand.write_text(text.replace(old, value))
    out = tmp_path / "out"
    with pytest.raises(XlhandError) as err:
        new_hand("myhand", mesh_hand, out)
    message = str(err.value)
    assert message.startswith(f"{mesh_hand}: ") and culprit in message and "\n" not in message
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_mesh_is_noted_not_fatal(mesh_hand, tmp_path):
    (mesh_hand.parent / "meshes/collision/tip.stl").unlink()
    result = new_hand("myhand", mesh_hand, tmp_path / "out")
    assert "mesh './meshes/collision/../collision/tip.stl' not found; left as it is" in result.notes
    assert "xlhand_myhand/hand/meshes/collision/tip.stl" not in result.files


def test_bad_name_and_existing_folder_are_refused(mesh_hand, tmp_path):
    with pytest.raises(XlhandError, match="'My Hand' is not a valid hand name"):
        new_hand("My Hand", mesh_hand, tmp_path)
    first = new_hand("myhand", mesh_hand, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in first.path.rglob("*")}
    with pytest.raises(XlhandError) as err:
        new_hand("myhand", mesh_hand, tmp_path)
    assert str(err.value) == f"{first.path}: already exists; refusing to overwrite it"
    assert {p: p.stat().st_mtime_ns for p in first.path.rglob("*")} == before


def test_cli_new_hand(mesh_hand, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["new", "hand", "myhand", "--urdf", str(mesh_hand), "-o", str(tmp_path), "--json"])
    assert done.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == str(tmp_path / "xlhand-myhand") and data["entry_point"] == "myhand = xlhand_myhand"
    assert data["fingertips"] == {"thumb": {"link": "f1_tip", "offset": [0.0, 0.0, 0.0]},
                                  "index": {"link": "f2_tip", "offset": [0.0, 0.0, 0.0]}}
    with pytest.raises(SystemExit) as done:
        main(["new", "hand", "myhand", "--urdf", str(mesh_hand), "-o", str(tmp_path)])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'xlhand-myhand'}: already exists; refusing to overwrite it\n"


def test_hand_toml_can_pin_the_limits(mesh_hand, tmp_path):
    from xlhand.packaging.files import copy_hand_files
    from xlhand.packaging.handtoml import hand_toml

    source = xlhand.load_hand(mesh_hand)
    copy_hand_files(mesh_hand, tmp_path / "copy")
    (tmp_path / "copy" / "hand.toml").write_text(hand_toml(source, "copy", mesh_hand.name, "a copy", limits=True))
    spec = load_spec(tmp_path / "copy" / "hand.toml")
    assert spec.limits == {"f1_joint": (0.0, 1.5), "f2_joint": (0.0, 1.5)}
    copy = hand_from_spec(spec)
    assert copy.tips == source.tips and torch.equal(copy.lower, source.lower)
    np.testing.assert_allclose(copy.mount, source.mount, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Every fixture hand


def _fixture_hands() -> list[Path]:
    if not FIXTURE_HANDS.is_dir():
        return []
    return sorted(p for p in FIXTURE_HANDS.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def fixture_packages(tmp_path_factory):
    """``{name: (source URDF, NewHand)}`` for every hand in ``../shared/fixtures/hands``."""
    require_shared(FIXTURE_HANDS)
    out = tmp_path_factory.mktemp("fixture-packages")
    packages = {}
    for folder in _fixture_hands():
        (urdf,) = folder.glob("*.urdf")
        packages[folder.name] = (urdf, new_hand(folder.name, urdf, out))
    return packages


def test_fixture_hands_are_all_there(fixture_packages):
    assert set(fixture_packages) == {"allegro_hand", "barrett_hand", "dclaw_gripper", "leap_hand", "panda_gripper",
                                     "unitree_dex3_1"}


@pytest.mark.parametrize("name", ["allegro_hand", "barrett_hand", "dclaw_gripper", "leap_hand", "panda_gripper",
                                  "unitree_dex3_1"])
def test_generated_hand_toml_reproduces_what_inspect_detected(fixture_packages, name):
    urdf, result = fixture_packages[name]
    source = hand_from_spec(spec_for_urdf(urdf, name=name))
    spec = load_spec(result.path / result.package / "hand" / "hand.toml")
    packaged = hand_from_spec(spec)
    assert packaged.tips_source == "hand.toml" and packaged.mount_source == "hand.toml"
    assert packaged.tips == source.tips  # links and offsets, exactly
    np.testing.assert_allclose(packaged.mount, source.mount, atol=1e-12)
    assert packaged.joint_names == source.joint_names
    assert torch.equal(packaged.lower, source.lower) and torch.equal(packaged.upper, source.upper)
    q = source.sample(256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(packaged.fingertips(q), source.fingertips(q), atol=1e-10, rtol=0)
    a, b = describe_hand(source), describe_hand(packaged)
    assert a["fingertips"] == b["fingertips"]
    assert {k: a["canonical_frame"][k] for k in ("xyz", "rpy")} == {k: b["canonical_frame"][k] for k in ("xyz", "rpy")}
    # every mesh the source hand shows exists in the package, byte for byte
    src_meshes = sorted((v.link, v.mesh.relative_to(urdf.parent.resolve())) for v in source.robot.visuals if v.mesh)
    pkg_root = spec.urdf.parent
    assert sorted((v.link, v.mesh.relative_to(pkg_root)) for v in packaged.robot.visuals if v.mesh) == src_meshes
    for _, rel in src_meshes:
        assert (pkg_root / rel).read_bytes() == (urdf.parent / rel).read_bytes()


def test_generated_packages_install_and_inspect_accepts_them(fixture_packages, tmp_path_factory):
    """One fresh environment, all six packages installed in one pip run; the real CLI in one process there."""
    require_build_backend()
    venv = PluginVenv(tmp_path_factory.mktemp("fixtures-venv") / "venv")
    venv.install(*(result.path for _, result in fixture_packages.values()))
    names = sorted(fixture_packages)
    (code, out, err), *inspected_all = venv.run_many(
        ["hands", "list", "--json"], *(["inspect", name, "--json"] for name in names), allow=",".join(names))
    results = dict(zip(names, inspected_all))
    assert code == 0, err
    listed = {row["name"]: row for row in json.loads(out)}
    for name in names:
        assert listed[name]["plugin"] == name
        assert Path(listed[name]["hand_toml"]).is_relative_to(venv.site_packages)
        code, out, err = results[name]
        assert code == 0, f"{name}: {err}"
        inspected = json.loads(out)
        urdf, result = fixture_packages[name]
        expected = result.summary()
        assert inspected["name"] == name and inspected["dof"] == expected["dof"]
        assert inspected["canonical_frame"]["source"] == "hand.toml"
        assert inspected["fingertips_source"] == "hand.toml"
        assert {t["role"]: {"link": t["link"], "offset": t["offset"]} for t in inspected["fingertips"]} == \
            expected["fingertips"]
        assert Path(inspected["urdf"]).is_relative_to(venv.site_packages / result.package / "hand")


# ---------------------------------------------------------------------------------------------------------------
# The example third-party plugin


def _example_files() -> dict[str, bytes]:
    skip = ("__pycache__", ".egg-info", ".pytest_cache", "build", "dist")
    return {p.relative_to(EXAMPLE).as_posix(): p.read_bytes() for p in sorted(EXAMPLE.rglob("*"))
            if p.is_file() and not any(part.endswith(skip) for part in p.relative_to(EXAMPLE).parts)}


def test_example_is_exactly_what_xlhand_new_hand_makes(tmp_path):
    """Regenerating the example from its own URDF gives the same files: the template and the example agree."""
    hand_dir = EXAMPLE / "xlhand_tribot" / "hand"
    description = tomllib.loads((hand_dir / "hand.toml").read_text())["description"]
    result = new_hand("tribot", hand_dir / "tribot.urdf", tmp_path, description=description)
    regenerated = {rel: (result.path / rel).read_bytes() for rel in result.files}
    example = _example_files()
    assert sorted(example) == sorted(regenerated)
    differing = [rel for rel in example if example[rel] != regenerated[rel]]
    assert differing == [], "regenerate examples/xlhand-tribot with `xlhand new hand` (see examples/README.md)"


def _require_example_installed() -> None:
    try:
        importlib.metadata.distribution("xlhand-tribot")
    except importlib.metadata.PackageNotFoundError:
        message = "examples/xlhand-tribot is not installed (pip install -e examples/xlhand-tribot)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def test_example_plugin_is_found_through_its_entry_point(monkeypatch, fresh_plugins):
    _require_example_installed()
    from xlhand import registry
    from xlhand.runtime.sim import SimDriver
    from xlhand.registry import get_driver

    monkeypatch.setenv("XLHAND_LOAD_PLUGINS", "tribot")
    entry = registry.registry().hands["tribot"]
    assert entry.plugin == "tribot"
    report = {row["name"]: row for row in registry.plugin_report()}
    assert (report["tribot"]["hands"], report["tribot"]["errors"]) == (["tribot"], [])
    assert report["tribot"]["version"] == importlib.metadata.version("xlhand-tribot")
    hand = xlhand.load_hand("tribot")
    assert (hand.dof, hand.fingers) == (8, ["thumb", "index", "middle"])
    assert isinstance(get_driver(None, hand), SimDriver)


def test_example_hand_is_a_sensible_dexterous_hand():
    """The example is the onboarding target: an opposing thumb that reaches both fingers, human-sized."""
    hand = xlhand.load_hand(EXAMPLE / "xlhand_tribot" / "hand" / "hand.toml")
    tips = hand.fingertips(hand.sample(20_000, generator=torch.Generator().manual_seed(0)))
    for i, finger in enumerate(hand.fingers[1:], start=1):
        gap = (tips[:, 0] - tips[:, i]).norm(dim=-1)
        assert gap.min() < 0.005, f"the thumb never comes within 5 mm of the {finger}"
    reach = tips.norm(dim=-1).max()
    assert 0.12 < reach < 0.25  # metres from the wrist
    assert ((hand.upper - hand.lower) <= 1.6 + 1e-6).all()
