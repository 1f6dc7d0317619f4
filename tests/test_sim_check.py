"""`xlhand.sim.check` and the hand builder: hands hold their posture in physics; broken geometry still loads."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest

pytest.importorskip("mujoco")

from conftest import require_shared  # noqa: E402

from xlhand.registry import load_hand  # noqa: E402
from xlhand.sim.build import SimWarning  # noqa: E402
from xlhand.sim.check import DRIFT_TOL, MIMIC_TOL, check_hand, check_path_or_name  # noqa: E402

ALLEGRO = "fixtures/hands/allegro_hand/allegro_hand_right.urdf"


@pytest.mark.parametrize("name", ["inspire", "ability", "paxini", "xhand"])
def test_builtin_hands_hold_their_posture(name):
    report = check_hand(load_hand(name), seconds=2.0)
    assert report.passed, report.failures()
    assert report.finite and report.drift <= DRIFT_TOL and report.mimic_error <= MIMIC_TOL
    assert len(report.joints) == report.dof and all(j["kp"] > 0 and j["force_limit"] > 0 for j in report.joints)
    if name == "inspire":  # coupled finger joints are equality constraints
        assert report.mimic_joints > 0


def test_a_fixture_hand_with_meshes_holds_its_posture():
    urdf = require_shared() / "fixtures/hands/leap_hand/leap_hand_right.urdf"
    report = check_path_or_name(urdf, seconds=2.0)
    assert report.passed, report.failures()
    assert report.dof == 16 and report.realtime_factor > 0


def _allegro_copy(tmp_path: Path, collision_mesh: str) -> Path:
    """Allegro copied with its meshes, every collision mesh replaced by ``collision_mesh`` (relative to the copy:
    a file that does not exist, or a broken one)."""
    src = require_shared() / ALLEGRO
    shutil.copytree(src.parent / "meshes", tmp_path / "meshes", dirs_exist_ok=True)
    text = re.sub(r"<collision.*?</collision>",
                  lambda m: re.sub(r'<mesh filename="[^"]+"', f'<mesh filename="{collision_mesh}"', m.group(0)),
                  src.read_text(), flags=re.S)
    out = tmp_path / "allegro_broken.urdf"
    out.write_text(text)
    return out


@pytest.mark.parametrize("kind", ["missing", "broken"])
def test_missing_or_broken_collision_meshes_fall_back_with_a_warning(tmp_path, kind):
    if kind == "missing":
        target = "meshes/no_such_mesh.stl"
    else:
        target = "meshes/broken.stl"
        (tmp_path / "meshes").mkdir()
        (tmp_path / target).write_bytes(b"solid nothing\nthis is not an stl\n")
    urdf = _allegro_copy(tmp_path, target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = check_path_or_name(urdf, seconds=1.0)
    sim_warnings = [str(w.message) for w in caught if issubclass(w.category, SimWarning)]
    assert sim_warnings, "expected a SimWarning about the collision meshes"
    assert any("visual" in m or "capsule" in m for m in sim_warnings), sim_warnings
    assert report.passed, report.failures()
    assert any("collision" in n or "visual" in n or "capsule" in n for n in report.notes), report.notes


def test_a_hand_that_cannot_load_is_a_failed_report_with_one_line(tmp_path):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'/><joint name='j' type='revolute'><parent link='a'/>"
                   "<child link='missing'/></joint></robot>")
    report = check_path_or_name(bad)
    assert not report.passed and report.error and "\n" not in report.error
    assert report.to_dict()["failures"] == [report.error]
