"""The canonical hand frame: fingers +z, palm facing +x, thumb toward +y (right hand).

1. On the four standalone reference hands, the frame xlhand estimates from geometry agrees with the reference's
   own mounting (the xArm `link7` frame) within 10 degrees. The xArm files may chain the hand differently from the
   standalone files (Inspire does), so the reference rotation of the standalone root is taken through a link both
   files share: the parent link of the index finger's first joint,
   ``R_ref(root) = R(link7 -> common, xArm file) @ R(root -> common, standalone file)^-1``.
   Both are computed here with a small ElementTree FK (the xArm files refer to meshes outside their folder, which
   xlhand rightly refuses to load).
2. On a synthetic hand written in the canonical frame and then rotated arbitrarily, estimation recovers the
   rotation exactly, and flexing a finger moves its tip toward +x.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ASSETS, require_shared

import xlhand
from xlhand.hand.frame import rotation_angle_deg
from xlhand.hand.rotation import rpy_matrix

TOL_DEG = 10.0

# hand -> (standalone URDF, xArm URDF, the index finger's first joint)
REFERENCE = {
    "ability": ("ability_hand/ability_hand_right.urdf", "xarm7_ability/xarm7_ability_right_hand.urdf", "index_q1"),
    "inspire": ("inspire_hand/inspire_hand_right.urdf", "xarm7_inspire/xarm7_inspire_right_hand.urdf",
                "index_proximal_joint"),
    "xhand": ("xhand/xhand_right.urdf", "xarm7_xhand/xarm7_xhand_right_hand.urdf", "right_hand_index_bend_joint"),
    "paxini": ("paxini/dexh13_hand_right_description.urdf", "xarm7_paxini/xarm7_pxdh13_right_hand_glb.urdf",
               "right_index_joint_0"),
}


def _joints_by_child(path: Path) -> tuple[dict, dict]:
    """{child link: (parent link, 4x4 origin, joint type)} and {joint name: parent link}."""
    by_child, parent_of_joint = {}, {}
    for j in ET.parse(path).getroot().findall("joint"):
        o = j.find("origin")
        T = np.eye(4)
        if o is not None:
            T[:3, :3] = rpy_matrix([float(v) for v in o.get("rpy", "0 0 0").split()])
            T[:3, 3] = [float(v) for v in o.get("xyz", "0 0 0").split()]
        parent = j.find("parent").get("link")
        by_child[j.find("child").get("link")] = (parent, T, j.get("type"))
        parent_of_joint[j.get("name")] = parent
    return by_child, parent_of_joint


def _fixed_transform(by_child: dict, ancestor: str, link: str) -> np.ndarray:
    """ancestor -> link through fixed joints only (fails if a movable joint lies between)."""
    T = np.eye(4)
    while link != ancestor:
        assert link in by_child, f"{ancestor!r} is not an ancestor"
        parent, origin, jtype = by_child[link]
        assert jtype == "fixed", f"movable joint above {link!r}"
        T = origin @ T
        link = parent
    return T


def _root(by_child: dict) -> str:
    parents = {p for p, _, _ in by_child.values()}
    (root,) = parents - set(by_child)
    return root


@pytest.mark.parametrize("hand", list(REFERENCE))
def test_estimated_frame_matches_xarm_mount(hand):
    standalone_file, xarm_file, index_joint = REFERENCE[hand]
    standalone, xarm = ASSETS / standalone_file, ASSETS / xarm_file
    require_shared(standalone)
    require_shared(xarm)
    s_child, s_joint_parent = _joints_by_child(standalone)
    x_child, x_joint_parent = _joints_by_child(xarm)
    common = s_joint_parent[index_joint]
    assert x_joint_parent[index_joint] == common, "the files do not share the index finger's parent link"
    root = _root(s_child)
    R_ref = _fixed_transform(x_child, "link7", common)[:3, :3] @ np.linalg.inv(
        _fixed_transform(s_child, root, common)[:3, :3]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = xlhand.load_hand(standalone)
    assert h.mount_source == "estimated"
    assert h.robot.root == root
    angle = rotation_angle_deg(R_ref, h.mount[:3, :3])
    assert angle <= TOL_DEG, f"{hand}: estimated frame is {angle:.1f} degrees from the xArm mount"


def test_builtin_mounts_are_the_reference_flange_frame():
    """The built-in hands pin their mount; it is a proper rotation and the thumb sits toward +y at mid-range."""
    for name in ("ability", "inspire", "xhand", "paxini"):
        h = xlhand.load_hand(name)
        R = h.mount[:3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
        tips = h.fingertips(((h.lower + h.upper) / 2)[None].double())[0]
        thumb, others = tips[0], tips[1:]
        assert h.fingers[0] == "thumb"
        assert float(thumb[1]) > float(others[:, 1].mean()), f"{name}: thumb not toward +y"
        assert float(others[:, 2].mean()) > 0.05, f"{name}: fingers not along +z"


# ------------------------------------------------------------------------------------------ synthetic hand
def _synthetic_urdf(xyz, rpy) -> str:
    """Four fingers along +z in a row along y (index at +y), flexing about +y toward +x; a thumb off the row, toward +y; the
    finger bases are centred on the z axis.

    The hand is built in the canonical frame (`palm`), attached to the URDF root by a fixed joint (xyz, rpy).
    """
    rows = {"index": 0.025, "middle": 0.005, "ring": -0.015, "little": -0.035}
    parts = [f'<robot name="synthetic"><link name="root"/><link name="palm"/>'
             f'<joint name="mount" type="fixed"><parent link="root"/><child link="palm"/>'
             f'<origin xyz="{xyz[0]} {xyz[1]} {xyz[2]}" rpy="{rpy[0]} {rpy[1]} {rpy[2]}"/></joint>']
    lim = '<limit lower="0" upper="1.6" effort="1" velocity="1"/>'
    for name, y in rows.items():
        parts.append(
            f'<link name="{name}_1"/><link name="{name}_2"/><link name="{name}_tip"/>'
            f'<joint name="{name}_mcp" type="revolute"><parent link="palm"/><child link="{name}_1"/>'
            f'<origin xyz="0 {y} 0.09"/><axis xyz="0 1 0"/>{lim}</joint>'
            f'<joint name="{name}_pip" type="revolute"><parent link="{name}_1"/><child link="{name}_2"/>'
            f'<origin xyz="0 0 0.03"/><axis xyz="0 1 0"/>{lim}</joint>'
            f'<joint name="{name}_tip_joint" type="fixed"><parent link="{name}_2"/><child link="{name}_tip"/>'
            f'<origin xyz="0 0 0.02"/></joint>'
        )
    parts.append(
        '<link name="thumb_1"/><link name="thumb_tip"/>'
        '<joint name="thumb_cmc" type="revolute"><parent link="palm"/><child link="thumb_1"/>'
        f'<origin xyz="0 0.02 0.03"/><axis xyz="1 0 0"/>{lim}</joint>'
        '<joint name="thumb_tip_joint" type="fixed"><parent link="thumb_1"/><child link="thumb_tip"/>'
        '<origin xyz="0.03 0.02 0.02"/></joint></robot>'
    )
    return "".join(parts)


@pytest.mark.parametrize("seed", range(4))
def test_estimation_recovers_a_rotated_synthetic_hand(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rpy = rng.uniform(-math.pi, math.pi, 3) * np.array([1.0, 0.5, 1.0])
    R = rpy_matrix(rpy)  # root <- palm (= canonical orientation)
    xyz = R @ [0.0, 0.0, -rng.uniform(0.0, 0.05)]  # the root (wrist) somewhere below the palm, on its axis
    path = tmp_path / "synthetic.urdf"
    path.write_text(_synthetic_urdf(xyz, rpy))
    h = xlhand.load_hand(path)

    assert rotation_angle_deg(R.T, h.mount[:3, :3]) < 1e-6
    assert {r: t.link for r, t in h.tips.items()} == {
        "thumb": "thumb_tip", "index": "index_tip", "middle": "middle_tip", "ring": "ring_tip",
        "little": "little_tip"}
    # fingertips at zero in the canonical frame: the palm-frame design, shifted by the mount offset R^T xyz
    zero = h.fingertips(torch.zeros(1, h.dof, dtype=torch.float64))[0].numpy()
    shift = R.T @ xyz
    expected = np.array([[0.03, 0.04, 0.05], [0, 0.025, 0.14], [0, 0.005, 0.14], [0, -0.015, 0.14], [0, -0.035, 0.14]])
    np.testing.assert_allclose(zero, expected + shift, atol=1e-12)
    # flexing the index finger (toward its upper limit) moves its tip toward the palm side, +x
    q = torch.zeros(1, h.dof, dtype=torch.float64)
    q[0, h.joint_names.index("index_mcp")] = 0.5
    moved = h.fingertips(q)[0, h.fingers.index("index")].numpy() - shift
    np.testing.assert_allclose(moved, [0.05 * math.sin(0.5), 0.025, 0.09 + 0.05 * math.cos(0.5)], atol=1e-12)
    assert not any("left hand" in n for n in h.notes)
