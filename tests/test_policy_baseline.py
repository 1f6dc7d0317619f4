"""The retargeting baseline's kinematic half: dex-retargeting's vector retargeting, configured from xlhand's
fingertip map, reproduces the source hand's thumb-to-finger vectors on the target hand far better than the target
standing still does, sequence after sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xlhand import load_hand

pytest.importorskip("dex_retargeting", reason="the baseline extra: pip install 'xlhand[baseline]'")


def _vectors(hand, q, roles):
    tips = hand.fingertips(torch.tensor(q, dtype=torch.float32)).double().numpy()
    i = [hand.fingers.index(r) for r in roles]
    return tips[:, i] - tips[:, [hand.fingers.index("thumb")]]


def test_vector_retargeting_reproduces_the_thumb_to_finger_vectors():
    from xlhand.policy.baseline import VectorRetargeter
    from xlhand.sim.demonstrator import hand_scale

    a, b = load_hand("inspire"), load_hand("paxini")
    r = VectorRetargeter(a, b)
    assert r.roles == [f for f in a.fingers if f != "thumb" and f in b.fingers]
    # a smooth trajectory: from open to a pinch, as a policy's chunk would be
    q0 = np.clip(np.zeros(a.dof), a.lower.numpy(), a.upper.numpy())
    q1 = a.sample(1, generator=torch.Generator().manual_seed(3)).double().numpy()[0]
    qa = q0 + np.linspace(0, 1, 16)[:, None] * (q1 - q0)
    r.reset()
    qb = r(qa)
    assert qb.shape == (16, b.dof)
    assert np.all(qb >= b.lower.numpy() - 1e-6) and np.all(qb <= b.upper.numpy() + 1e-6)
    want = _vectors(a, qa, r.roles) * hand_scale(b) / hand_scale(a)
    err = np.linalg.norm(_vectors(b, qb, r.roles) - want, axis=-1).mean()
    still = np.linalg.norm(_vectors(b, np.repeat(qb[:1], 16, 0), r.roles) - want, axis=-1).mean()
    assert err < 0.5 * still, (err, still)
