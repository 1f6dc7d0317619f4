"""Named poses and pinch poses (thumb tip on a fingertip by a short batched IK), within the joint limits."""

from __future__ import annotations

import pytest
import torch
from conftest import FIXTURE_HANDS, require_shared

import xlhand
from xlhand.errors import XlhandError
from xlhand.hand.poses import named_pose, pinch_distance, pinch_pose, pinch_poses, pose


def within_limits(hand, q: torch.Tensor) -> bool:
    return bool(((q >= hand.lower - 1e-6) & (q <= hand.upper + 1e-6)).all())


@pytest.mark.parametrize("name", ["ability", "inspire", "paxini", "xhand"])
def test_named_poses_sit_at_the_documented_joint_values(name):
    hand = xlhand.load_hand(name)
    lo, hi = hand.lower, hand.upper
    open_, fist, mid = (named_pose(hand, n)[0] for n in ("open", "fist", "mid"))
    assert torch.equal(open_, torch.clamp(torch.zeros_like(lo), lo, hi))
    assert bool(((fist == lo) | (fist == hi)).all())
    assert bool((fist.abs() >= open_.abs()).all())
    assert torch.allclose(mid, (lo + hi) / 2)
    with pytest.raises(XlhandError, match="unknown pose 'splayed'"):
        pose(hand, "splayed")


@pytest.mark.parametrize("name", ["ability", "inspire", "paxini", "xhand"])
def test_pinch_poses_bring_the_thumb_onto_the_index_tip(name):
    hand = xlhand.load_hand(name)
    q = pinch_poses(hand, 16, generator=torch.Generator().manual_seed(0))
    assert q.shape == (16, hand.dof) and within_limits(hand, q)
    with torch.no_grad():
        d = pinch_distance(hand, q)
        start = pinch_distance(hand, hand.sample(16, generator=torch.Generator().manual_seed(0)))
    assert float(d.max()) < 1e-3, f"{name}: thumb-index distances {d.tolist()}"
    assert float(start.median()) > 0.02  # the random starts were not pinches already


def test_pinch_poses_cycle_over_fingers_and_repeat_with_a_seed():
    hand = xlhand.load_hand("xhand")
    a = pinch_poses(hand, 8, generator=torch.Generator().manual_seed(1), finger=None)
    b = pinch_poses(hand, 8, generator=torch.Generator().manual_seed(1), finger=None)
    assert torch.equal(a, b)
    fingers = [f for f in hand.fingers if f != "thumb"]
    with torch.no_grad():
        d = pinch_distance(hand, a, None)
    for i, f in enumerate(fingers):
        if f in ("index", "middle"):
            assert float(d[i::len(fingers)].max()) < 2e-3, f"thumb-{f}: {d[i::len(fingers)].tolist()}"


def test_pinch_pose_returns_the_closest_single_pose():
    hand = xlhand.load_hand("xhand")
    q = pinch_pose(hand, finger="middle", generator=torch.Generator().manual_seed(0))
    assert q.shape == (1, hand.dof) and within_limits(hand, q)
    with torch.no_grad():
        assert float(pinch_distance(hand, q, "middle")[0]) < 1e-3


def test_pinches_need_a_thumb_and_the_named_finger():
    with pytest.raises(XlhandError, match="has no finger 'little'"):
        pinch_poses(xlhand.load_hand("paxini"), 2, finger="little")
    require_shared(FIXTURE_HANDS)
    dclaw = xlhand.load_hand(FIXTURE_HANDS / "dclaw_gripper" / "dclaw_gripper.urdf")
    with pytest.raises(XlhandError, match="has no thumb"):
        pinch_pose(dclaw)
