"""`xlhand inspect --json` on real third-party URDFs and the four standalone reference hands.

The expected DoF is computed here from the XML alone (ElementTree): movable joints minus mimic joints, in file
order. Fingertip roles are checked against the link names a person reads off each hand.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ASSETS, FIXTURE_HANDS, require_shared

from xlhand.cli.main import main

# URDF (relative to ../shared) -> expected {role: tip link}; a set of links stands for roles that names cannot tell
# apart (Barrett's two alike fingers), None for "no thumb".
HANDS = {
    "allegro": (
        FIXTURE_HANDS / "allegro_hand/allegro_hand_right.urdf",
        {"thumb": "link_15.0_tip", "index": "link_3.0_tip", "middle": "link_7.0_tip", "ring": "link_11.0_tip"},
    ),
    "leap": (
        FIXTURE_HANDS / "leap_hand/leap_hand_right.urdf",
        {"thumb": "thumb_tip_head", "index": "index_tip_head", "middle": "middle_tip_head", "ring": "ring_tip_head"},
    ),
    "dex3": (
        FIXTURE_HANDS / "unitree_dex3_1/dex3_1_r.urdf",
        {"thumb": "right_hand_thumb_2_link", "index": "right_hand_index_1_link",
         "middle": "right_hand_middle_1_link"},
    ),
    "panda": (
        FIXTURE_HANDS / "panda_gripper/panda_gripper_glb.urdf",
        {"thumb": "panda_leftfinger", "index": "panda_rightfinger"},
    ),
    "barrett": (
        FIXTURE_HANDS / "barrett_hand/bhand_model.urdf",
        {"thumb": "finger_3_dist_link", ("index", "middle"): {"finger_1_dist_link", "finger_2_dist_link"}},
    ),
    "dclaw": (
        FIXTURE_HANDS / "dclaw_gripper/dclaw_gripper.urdf",
        {"thumb": None, ("index", "middle", "ring"): {"link_f1_head", "link_f2_head", "link_f3_head"}},
    ),
    "ref_ability": (
        ASSETS / "ability_hand/ability_hand_right.urdf",
        {"thumb": "thumb_tip", "index": "index_tip", "middle": "middle_tip", "ring": "ring_tip",
         "little": "pinky_tip"},
    ),
    "ref_inspire": (
        ASSETS / "inspire_hand/inspire_hand_right.urdf",
        {"thumb": "thumb_tip", "index": "index_tip", "middle": "middle_tip", "ring": "ring_tip",
         "little": "pinky_tip"},
    ),
    "ref_xhand": (
        ASSETS / "xhand/xhand_right.urdf",
        {"thumb": "right_hand_thumb_rota_tip", "index": "right_hand_index_rota_tip", "middle": "right_hand_mid_tip",
         "ring": "right_hand_ring_tip", "little": "right_hand_pinky_tip"},
    ),
    "ref_paxini": (
        ASSETS / "paxini/dexh13_hand_right_description.urdf",
        {"thumb": "thumb_tip", "index": "index_tip", "middle": "middle_tip", "ring": "ring_tip"},
    ),
}


def xml_facts(path: Path) -> dict:
    """Independent of xlhand: movable/mimic joints in file order, and the leaf links."""
    root = ET.parse(path).getroot()
    movable, mimic = [], []
    parents = set()
    for j in root.findall("joint"):
        parents.add(j.find("parent").get("link"))
        if j.get("type") in ("revolute", "continuous", "prismatic"):
            movable.append(j.get("name"))
            if j.find("mimic") is not None:
                mimic.append(j.get("name"))
    links = [link.get("name") for link in root.findall("link")]
    return {
        "movable": movable,
        "mimic": mimic,
        "actuated": [n for n in movable if n not in mimic],
        "leaves": {name for name in links if name not in parents},
    }


def inspect_json(target, capsys) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(target), "--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("hand", list(HANDS))
def test_inspect_dof_and_fingertip_roles(hand, capsys):
    path, expected = HANDS[hand]
    require_shared(path)
    facts = xml_facts(path)
    data = inspect_json(path, capsys)

    assert data["movable_joints"] == len(facts["movable"])
    assert data["mimic_joints"] == len(facts["mimic"])
    assert data["dof"] == len(facts["movable"]) - len(facts["mimic"])
    assert data["joint_names"] == facts["actuated"]
    assert [j["name"] for j in data["joints"] if j["actuated"]] == facts["actuated"]
    assert {j["name"] for j in data["joints"] if j["mimic"]} == set(facts["mimic"])

    roles = {t["role"]: t["link"] for t in data["fingertips"]}
    assert data["fingertips_source"] == "detected"
    assert data["fingers"] == list(roles)
    for role, link in expected.items():
        if isinstance(role, tuple):
            assert {roles.get(r) for r in role} == link, roles
        elif link is None:
            assert role not in roles, roles
        else:
            assert roles.get(role) == link, roles
    n_expected = sum(len(r) if isinstance(r, tuple) else (link is not None) for r, link in expected.items())
    assert len(roles) == n_expected, roles
    # every detected tip is a leaf of the link tree (LEAP: not its `fingertip*` links, which have children)
    assert set(roles.values()) <= facts["leaves"]
    if "thumb" not in roles:
        assert any("no thumb" in w for w in data["warnings"]), data["warnings"]
    # the frame is reported and is a proper rotation (rpy of three finite numbers)
    assert data["canonical_frame"]["source"] == "estimated"
    assert len(data["canonical_frame"]["rpy"]) == 3


def test_inspect_builtin_by_name(capsys):
    data = inspect_json("inspire", capsys)
    assert data["name"] == "inspire"
    assert data["fingertips_source"] == "hand.toml"
    assert data["canonical_frame"]["source"] == "hand.toml"
    assert data["canonical_frame"]["xyz"] == pytest.approx([0.0, 0.0, 0.018])
    assert data["canonical_frame"]["rpy"] == pytest.approx([0.0, 0.0, -1.57079], abs=1e-6)
    assert data["fingers"] == ["thumb", "index", "middle", "ring", "little"]
    assert data["dof"] == 6 and data["mimic_joints"] == 6


def test_inspect_human_output(capsys):
    path = HANDS["allegro"][0]
    require_shared(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(path)])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    assert "actuated DoF 16" in out
    for word in ("Joints", "Fingertips (detected)", "link_15.0_tip", "Canonical frame (estimated)"):
        assert word in out
