"""The wrist part of a policy's action, in terms no hand owns.

The latent carries the posture; where the hand goes is carried by an **anchor**: a weighted centroid of
fingertips (which fingers, and how much, is the policy's choice per instruction: the grasping fingers for a grasp,
the index tip for a poke), as a world position divided by the scene's scale, plus the wrist's rotation (the first
two columns of its matrix, 6 numbers). A hand turns that into its own wrist pose through its own FK on the posture
its decoder gives: ``wrist = scale * anchor - R @ centroid_hand(q)``. Roles the hand lacks drop out of the
centroid; the canonical hand frame (palm +x, fingers +z) makes the rotation mean the same for every hand.
"""

from __future__ import annotations

import numpy as np
import torch

ROLES = ("thumb", "index", "middle", "ring", "little")
ARM_DIM = 9  # anchor (3) + rotation (6)


def role_weights(fingers: list[str]) -> np.ndarray:
    """``(5,)`` uniform weights over ``fingers`` in :data:`ROLES` order (the training target of a task)."""
    w = np.array([1.0 if r in fingers else 0.0 for r in ROLES])
    return w / max(w.sum(), 1.0)


def task_fingers(task, hand_fingers: list[str]) -> list[str]:
    """The fingertips a task's wrist motion is about: the index for a poke or a point, else the grasping ones."""
    if task.grasp in ("poke", "point") and "index" in hand_fingers:
        return ["index"]
    return task.grasp_fingers(hand_fingers)


def hand_weights(weights: np.ndarray, hand_fingers: list[str]) -> np.ndarray:
    """``(F,)`` weights over a hand's own fingers from role weights: roles it lacks drop out, the rest are
    renormalised (uniform when none of the weighted roles is present)."""
    w = np.array([float(weights[ROLES.index(f)]) if f in ROLES else 0.0 for f in hand_fingers])
    if w.sum() <= 1e-6:
        w = np.ones(len(hand_fingers))
    return w / w.sum()


def rot6(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` -> ``(..., 6)``: the first two columns."""
    return np.concatenate([R[..., :, 0], R[..., :, 1]], -1)


def from_rot6(v: np.ndarray) -> np.ndarray:
    """``(..., 6)`` -> the nearest rotation ``(..., 3, 3)`` (Gram-Schmidt)."""
    a, b = v[..., :3], v[..., 3:]
    x = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)
    b = b - (x * b).sum(-1, keepdims=True) * x
    y = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-9)
    return np.stack([x, y, np.cross(x, y)], -1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z) -> ``(..., 3, 3)``."""
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    w, x, y, z = (q[..., i] for i in range(4))
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def centroid(hand, q: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(T, 3)`` hand-frame weighted fingertip centroid of postures ``q (T, dof)``; ``weights``: role weights."""
    w = hand_weights(weights, hand.fingers)
    with torch.no_grad():
        tips = hand.fingertips(torch.tensor(np.atleast_2d(q), dtype=torch.float32)).double().numpy()
    return np.einsum("tfc,f->tc", tips, w)


def arm_features(hand, q: np.ndarray, wrist_pose: np.ndarray, weights: np.ndarray, scale: float) -> np.ndarray:
    """``(T, 9)`` arm actions (or states) from postures ``q (T, dof)`` and wrist poses ``(T, 7)`` (pos, quat)."""
    R = quat_to_matrix(wrist_pose[:, 3:7])
    anchor = wrist_pose[:, :3] + np.einsum("tij,tj->ti", R, centroid(hand, q, weights))
    return np.concatenate([anchor / scale, rot6(R)], -1).astype(np.float32)


def wrist_from_arm(hand, q: np.ndarray, arm: np.ndarray, weights: np.ndarray,
                   scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The wrist positions ``(T, 3)`` and rotations ``(T, 3, 3)`` that put this hand's weighted fingertip centroid,
    in postures ``q (T, dof)``, on the anchors of ``arm (T, 9)``."""
    R = from_rot6(np.asarray(arm[:, 3:9], dtype=np.float64))
    pos = scale * np.asarray(arm[:, :3], dtype=np.float64) - np.einsum("tij,tj->ti", R, centroid(hand, q, weights))
    return pos, R
