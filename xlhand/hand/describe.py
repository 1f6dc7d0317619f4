"""Plain-data descriptions of hands and plugins, for ``xlhand inspect``, ``hands show`` and ``plugins``."""

from __future__ import annotations

from xlhand.hand.kinematics import actuated_joints
from xlhand.hand.model import Hand
from xlhand.hand.rotation import matrix_rpy


def describe_hand(hand: Hand) -> dict:
    """Everything ``xlhand inspect`` shows, as JSON-ready data."""
    robot = hand.robot
    actuated = {j.name for j in actuated_joints(robot)}
    joints = []
    for j in robot.joints:
        if not j.movable:
            continue
        i = hand.joint_names.index(j.name) if j.name in actuated else None
        joints.append(
            {
                "name": j.name,
                "type": j.type,
                "lower": float(hand.lower[i]) if i is not None else j.lower,
                "upper": float(hand.upper[i]) if i is not None else j.upper,
                "actuated": j.name in actuated,
                "mimic": None if j.mimic is None else {"joint": j.mimic[0], "multiplier": j.mimic[1], "offset": j.mimic[2]},
            }
        )
    zero = hand.fingertips(((hand.lower + hand.upper) / 2)[None].double())[0].numpy()
    tips = [
        {"role": role, "link": t.link, "offset": list(t.offset), "position_mid_range_m": [round(float(v), 5) for v in p]}
        for (role, t), p in zip(hand.tips.items(), zero)
    ]
    return {
        "name": hand.name,
        "urdf": str(robot.path),
        "robot": robot.name,
        "links": len(robot.links),
        "movable_joints": len(joints),
        "mimic_joints": sum(1 for j in joints if j["mimic"]),
        "dof": hand.dof,
        "joint_names": hand.joint_names,
        "joints": joints,
        "fingers": hand.fingers,
        "fingertips": tips,
        "fingertips_source": hand.tips_source,
        "canonical_frame": {
            "source": hand.mount_source,
            "xyz": [round(float(v), 6) for v in hand.mount[:3, 3]],
            "rpy": [round(v, 6) for v in matrix_rpy(hand.mount[:3, :3])],
            "convention": "origin at the wrist, fingers +z, palm facing +x, thumb toward +y (right hand)",
        },
        "kinematics_hash": hand.kinematics_hash,
        "driver": hand.spec.driver,
        "warnings": list(hand.notes),
    }
