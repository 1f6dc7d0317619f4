"""The canonical hand frame: origin at the wrist, fingers along +z, palm facing +x, thumb toward +y.

A hand's *mount* is the 4x4 transform canonical <- URDF root. ``hand.toml`` may pin it; otherwise it is
estimated from the hand's geometry at the zero pose (see :func:`estimate_mount`).
"""

from __future__ import annotations

import numpy as np

from xlhand.hand.fingertips import Finger, finger_geometry
from xlhand.hand.urdf import Robot


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-12 else v


def estimate_mount(robot: Robot, fingers: list[Finger], thumb: int | None) -> tuple[np.ndarray, list[str]]:
    """Estimate the canonical frame from geometry. Returns (4x4 mount, notes).

    - +z: from the root origin toward the centroid of the finger bases (when the root sits among the bases, as
      in Allegro, the mean base -> tip direction of the non-thumb fingers at the zero pose);
    - +y: the mean flexion axis of the non-thumb revolute fingers (the most distal joint's axis, signed so that
      moving toward its larger limit is positive; flexing about +y turns +z toward +x, so the palm faces +x);
      for a hand without revolute fingers (a parallel gripper), the direction from the other fingers to the thumb;
    - +x = y x z. The origin stays at the root link.
    """
    notes: list[str] = []
    mount = np.eye(4)
    if not fingers:
        notes.append("no fingers found; the canonical frame is the URDF root frame")
        return mount, notes
    geo = finger_geometry(robot, fingers)
    base, axis = geo["base"], geo["axis"]
    others = [i for i in range(len(fingers)) if i != thumb] or list(range(len(fingers)))
    centroid = base.mean(axis=0)
    extension = (geo["tip"][others] - base[others]).mean(axis=0)
    finger_length = float(np.linalg.norm(geo["tip"][others] - base[others], axis=1).mean())
    if np.linalg.norm(centroid) >= 0.25 * finger_length:
        z = _unit(centroid)
    else:
        # the root sits among the finger bases (Allegro): the fingers' own base -> tip direction at zero instead
        z = _unit(extension)
        notes.append("the URDF root sits among the finger bases; +z follows the fingers' extension at the zero pose")
    revolute = [i for i in others if robot.joint_by_name[fingers[i].all_joints[-1]].type == "revolute"]
    if revolute:
        y = axis[revolute].mean(axis=0)
    elif thumb is not None:
        y = geo["tip"][thumb] - geo["tip"][[i for i in others if i != thumb]].mean(axis=0)
    else:
        y = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 1.0, 0.0])
    y = _unit(y - (y @ z) * z)
    if np.linalg.norm(y) < 0.5:
        y = _unit(np.cross(z, [1.0, 0.0, 0.0]))
        notes.append("finger flexion axes are parallel to the fingers; +y chosen arbitrarily")
    x = np.cross(y, z)
    mount[:3, :3] = np.stack([x, y, z])
    if thumb is not None and len(others) and thumb not in others:
        rel = mount[:3, :3] @ (base[thumb] - base[others].mean(axis=0))
        if rel[1] < 0:
            notes.append("the thumb sits toward -y: this looks like a left hand (the frame is for right hands)")
    return mount, notes


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) of the rotation taking 3x3 rotation ``a`` to ``b``."""
    c = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
