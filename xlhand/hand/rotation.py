"""Rotation maths in URDF conventions: rpy <-> matrix, homogeneous transforms, skew matrices."""

from __future__ import annotations

import math

import numpy as np


def skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def rpy_matrix(rpy) -> np.ndarray:
    """3x3 rotation of URDF rpy (fixed axes x, then y, then z): Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    r, p, y = (float(a) for a in rpy)
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_rpy(R: np.ndarray) -> list[float]:
    """URDF rpy of a rotation matrix (inverse of :func:`xlhand.hand.rotation.rpy_matrix`)."""
    pitch = math.asin(max(-1.0, min(1.0, -R[2, 0])))
    if abs(math.cos(pitch)) > 1e-9:
        roll = math.atan2(R[2, 1], R[2, 2])
        yaw = math.atan2(R[1, 0], R[0, 0])
    else:
        roll, yaw = math.atan2(-R[1, 2], R[1, 1]), 0.0
    return [roll, pitch, yaw]


def transform(xyz=(0, 0, 0), rpy=(0, 0, 0)) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rpy_matrix(rpy)
    m[:3, 3] = [float(v) for v in xyz]
    return m
