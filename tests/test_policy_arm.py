"""The hand-free wrist action: a hand's wrist pose turns into the anchor and back exactly; the anchor of two hands
in the same pose of the task's fingertips is the same; a role a hand lacks drops out of the centroid."""

from __future__ import annotations

import numpy as np
import torch

from xlhand import load_hand
from xlhand.policy.arm import arm_features, from_rot6, hand_weights, quat_to_matrix, role_weights, rot6, wrist_from_arm


def _random_rotations(n, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_wrist_pose_to_arm_and_back_is_exact():
    hand = load_hand("inspire")
    q = hand.sample(20, generator=torch.Generator().manual_seed(1)).double().numpy()
    quat = _random_rotations(20)
    pose = np.concatenate([np.random.default_rng(2).uniform(-0.2, 0.2, (20, 3)), quat], 1)
    w = role_weights(["thumb", "index"])
    arm = arm_features(hand, q, pose, w, scale=1.3)
    pos, R = wrist_from_arm(hand, q, arm.astype(np.float64), w, scale=1.3)
    assert np.allclose(pos, pose[:, :3], atol=1e-5)
    assert np.allclose(R, quat_to_matrix(quat), atol=1e-5)
    assert np.allclose(from_rot6(rot6(R)), R)


def test_two_hands_put_their_anchor_fingertips_on_the_same_point():
    a, b = load_hand("inspire"), load_hand("ability")
    w = role_weights(["thumb", "index"])
    qa = np.zeros((1, a.dof))
    pose = np.array([[0.05, -0.02, 0.12, 1.0, 0.0, 0.0, 0.0]])
    arm = arm_features(a, qa, pose, w, scale=1.0)
    qb = np.clip(np.zeros((1, b.dof)), b.lower.numpy(), b.upper.numpy())
    pos, R = wrist_from_arm(b, qb, arm.astype(np.float64), w, scale=1.0)
    tips_b = pos[0][:, None] + R[0] @ b.fingertips(torch.as_tensor(qb, dtype=torch.float32))[0].double().numpy().T
    tips_a = pose[0, :3, None] + a.fingertips(torch.as_tensor(qa, dtype=torch.float32))[0].double().numpy().T
    ia, ib = [a.fingers.index(f) for f in ("thumb", "index")], [b.fingers.index(f) for f in ("thumb", "index")]
    assert np.allclose(tips_a[:, ia].mean(1), tips_b[:, ib].mean(1), atol=1e-6)


def test_roles_a_hand_lacks_drop_out_and_the_rest_renormalise():
    w = role_weights(["thumb", "index", "middle", "ring", "little"])
    assert np.allclose(hand_weights(w, ["thumb", "index", "middle"]), [1 / 3] * 3)
    assert np.allclose(hand_weights(role_weights(["little"]), ["thumb", "index"]), [0.5, 0.5])
