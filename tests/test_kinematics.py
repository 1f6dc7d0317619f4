"""Kinematics: gradients, the fast fingertip path against pytorch-kinematics, prismatic and mimic joints, joints
without limits, and sampling."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import FIXTURE_HANDS, require_shared

import xlhand
from xlhand.errors import XlhandError
from xlhand.hand.kinematics import mimic_map

BUILTIN = ["ability", "inspire", "xhand", "paxini"]
FIXTURES = {
    "allegro": "allegro_hand/allegro_hand_right.urdf",
    "leap": "leap_hand/leap_hand_right.urdf",
    "barrett": "barrett_hand/bhand_model.urdf",
    "dclaw": "dclaw_gripper/dclaw_gripper.urdf",
    "panda": "panda_gripper/panda_gripper_glb.urdf",
    "dex3": "unitree_dex3_1/dex3_1_r.urdf",
}


def load(name: str) -> xlhand.Hand:
    if name in FIXTURES:
        path = require_shared(FIXTURE_HANDS / FIXTURES[name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return xlhand.load_hand(path)
    return xlhand.load_hand(name)


def tips_from_link_poses(hand: xlhand.Hand, q: torch.Tensor) -> torch.Tensor:
    """Fingertips ``(B, F, 3)`` through pytorch-kinematics' full chain (every link's pose)."""
    poses = hand.link_poses(q)
    points = []
    for tip in hand.tips.values():
        p = torch.tensor([*tip.offset, 1.0], dtype=q.dtype)
        points.append((poses[tip.link] @ p)[:, :3])
    return torch.stack(points, dim=1)


# ------------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ["inspire", "allegro", "panda"])
def test_gradcheck_fingertips(name):
    hand = load(name)
    q = hand.sample(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(hand.fingertips, (q,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_gradients_reach_every_joint_that_moves_a_tip():
    """Every actuated joint of the inspire hand moves some fingertip, so every column of the Jacobian is non-zero;
    and the Jacobian equals pytorch-kinematics' (mimic couplings included)."""
    hand = load("inspire")
    q = hand.sample(2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: hand.fingertips(x).sum(0), q)  # (F, 3, B, dof)
    J_pk = torch.autograd.functional.jacobian(lambda x: tips_from_link_poses(hand, x).sum(0), q)
    torch.testing.assert_close(J, J_pk, atol=1e-10, rtol=1e-8)
    assert (J.abs().sum(dim=(0, 1, 2)) > 1e-3).all()


# ------------------------------------------------------------------------------ fast path == full chain (pk)
@pytest.mark.parametrize("name", BUILTIN + list(FIXTURES))
def test_fingertip_fk_matches_pytorch_kinematics(name):
    hand = load(name)
    gen = torch.Generator().manual_seed(7)
    q64 = hand.sample(1000, generator=gen, dtype=torch.float64)
    err64 = (hand.fingertips(q64) - tips_from_link_poses(hand, q64)).norm(dim=-1).max()
    assert float(err64) < 1e-12, f"{name}: float64 max error {float(err64):.3g} m"
    q32 = q64.float()
    tips32 = hand.fingertips(q32)
    assert tips32.dtype == torch.float32 and tips32.shape == (1000, len(hand.fingers), 3)
    err32 = (tips32.double() - tips_from_link_poses(hand, q64)).norm(dim=-1).max()
    assert float(err32) < 1e-5, f"{name}: float32 max error {float(err32):.3g} m"
    # and the configurations are not degenerate: the tips really move over the samples
    assert float(tips32.std(dim=0).max()) > 1e-3


def test_grad_and_no_grad_paths_agree_on_any_layout():
    """The autograd path (analytic backward) and the no-grad path give the same tips, for a non-contiguous q too."""
    hand = load("xhand")
    wide = torch.zeros(64, 2 * hand.dof, dtype=torch.float64)
    wide[:, ::2] = hand.sample(64, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    q = wide[:, ::2]
    assert not q.is_contiguous()
    with torch.no_grad():
        plain = hand.fingertips(q)
    tracked = hand.fingertips(q.clone().requires_grad_())
    assert tracked.requires_grad and tracked.is_contiguous() and plain.is_contiguous()
    torch.testing.assert_close(tracked.detach(), plain, atol=0, rtol=0)
    torch.testing.assert_close(plain, tips_from_link_poses(hand, q.contiguous()), atol=1e-12, rtol=0)


def test_combined_fk_over_several_hands_equals_each_hand_and_ignores_padding():
    """FingertipFK.combine: one FK over several hands fed normalised joints in blocks of ``width`` columns (the
    training step's layout) gives each hand's own fingertips, and padding columns neither change a value nor get a
    gradient; first derivatives match finite differences (a prismatic hand and chains of different depths)."""
    from xlhand.hand.kinematics import FingertipFK

    hands = [load("inspire"), load("panda"), load("allegro")]
    width = max(h.dof for h in hands) + 2
    lo, hi = [h.lower.double() for h in hands], [h.upper.double() for h in hands]
    parts = [(h._fk, ((b - a) / 2).numpy(), ((b + a) / 2).numpy()) for h, a, b in zip(hands, lo, hi)]
    fk = FingertipFK.combine(parts, width)
    assert fk.fingers == sum(len(h.fingers) for h in hands)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(len(hands), width, 9, generator=gen, dtype=torch.float64) * 2 - 1
    want = torch.cat([h.fingertips(h.denormalize(x[i, :h.dof].T)).permute(1, 2, 0) for i, h in enumerate(hands)])
    xT = x.reshape(-1, 9).clone().requires_grad_()
    got = fk.points(xT)
    torch.testing.assert_close(got.detach(), want, atol=1e-12, rtol=0)
    got.sum().backward()
    grad = xT.grad.view(len(hands), width, 9)
    for i, h in enumerate(hands):
        assert torch.all(grad[i, h.dof:] == 0)
    with torch.no_grad():
        torch.testing.assert_close(fk.points(x.reshape(-1, 9)), want, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda v: fk.points(v), (x.reshape(-1, 9)[:, :3].clone().requires_grad_(),),
                                    eps=1e-6, atol=1e-8, rtol=1e-6)


def test_second_derivatives_raise_instead_of_being_wrong():
    """The analytic backward supports first derivatives only; asking for more is an error, not a silent zero."""
    hand = load("inspire")
    q = hand.sample(2, generator=torch.Generator().manual_seed(2), dtype=torch.float64).requires_grad_()
    (g,) = torch.autograd.grad(hand.fingertips(q).square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|differentiate twice"):
        g.sum().backward()


def test_fingertips_rejects_wrong_shapes():
    hand = load("inspire")
    with pytest.raises(ValueError, match=r"expected q of shape \(B, 6\)"):
        hand.fingertips(torch.zeros(4, 5))
    with pytest.raises(ValueError):
        hand.fingertips(torch.zeros(6))


# --------------------------------------------------------------------------------------------- prismatic
def test_prismatic_gripper_opens_in_metres():
    """Panda: one actuated prismatic joint (metres), the second finger mimics it; opening by q widens the gap by 2q."""
    hand = load("panda")
    assert hand.dof == 1 and hand.joint_names == ["panda_finger_joint1"]
    assert hand.lower.tolist() == [0.0] and hand.upper.tolist() == pytest.approx([0.04])
    q = torch.tensor([[0.0], [0.01], [0.04]], dtype=torch.float64, requires_grad=True)
    tips = hand.fingertips(q)
    opening = (tips[:, 0] - tips[:, 1]) - (tips[0, 0] - tips[0, 1])  # the fingers' relative motion from closed
    torch.testing.assert_close(opening.norm(dim=-1), 2 * q[:, 0].detach(), atol=1e-12, rtol=0)
    (grad,) = torch.autograd.grad(opening[1].norm(), q)
    assert float(grad[1, 0]) == pytest.approx(2.0)
    # each finger moves along one fixed direction, the two directions opposite
    move = tips[2] - tips[0]
    torch.testing.assert_close(move[0].norm(), torch.tensor(0.04, dtype=torch.float64))
    torch.testing.assert_close(move[0], -move[1])


# ------------------------------------------------------------------------------------------------- mimic
MIMIC_URDF = """<robot name="mimicry">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/><link name="l4"/><link name="tip"/>
  <joint name="c" type="revolute">
    <parent link="l2"/><child link="l3"/><origin xyz="0.04 0 0"/><axis xyz="0 0 1"/>
    <limit lower="-3" upper="3" effort="1" velocity="1"/><mimic joint="b" multiplier="-0.5" offset="0.3"/>
  </joint>
  <joint name="a" type="revolute">
    <parent link="base"/><child link="l1"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/>
  </joint>
  <joint name="b" type="revolute">
    <parent link="l1"/><child link="l2"/><origin xyz="0.05 0 0"/><axis xyz="0 0 1"/>
    <limit lower="-3" upper="3" effort="1" velocity="1"/><mimic joint="a" multiplier="2" offset="0.1"/>
  </joint>
  <joint name="p" type="prismatic">
    <parent link="l3"/><child link="l4"/><origin xyz="0.03 0 0"/><axis xyz="1 0 0"/>
    <limit lower="0" upper="0.02" effort="1" velocity="1"/>
  </joint>
  <joint name="tip_joint" type="fixed"><parent link="l4"/><child link="tip"/><origin xyz="0.01 0 0"/></joint>
</robot>
"""

MIMIC_TOML = """name = "mimicry"
urdf = "mimicry.urdf"
[fingertips]
index = "tip"
[mount]
xyz = [0.0, 0.0, 0.0]
rpy = [0.0, 0.0, 0.0]
"""


def test_mimic_of_a_mimic_with_multiplier_and_offset(tmp_path):
    """A planar chain: a (actuated), b = 2 a + 0.1, c = -0.5 b + 0.3 = -a + 0.25 (c precedes b in the file), then
    an actuated prismatic p along x. The tip, by hand: 0.05 e(a) + 0.04 e(3a + 0.1) + (0.04 + p) e(2a + 0.35),
    with e(phi) = (cos phi, sin phi, 0)."""
    (tmp_path / "mimicry.urdf").write_text(MIMIC_URDF)
    (tmp_path / "hand.toml").write_text(MIMIC_TOML)
    hand = xlhand.load_hand(tmp_path / "hand.toml")
    assert hand.joint_names == ["a", "p"]
    W, b, names = mimic_map(hand.robot, [hand.robot.joint_by_name[n] for n in hand.joint_names])
    assert names == ["c", "a", "b", "p"]
    torch.testing.assert_close(torch.tensor(W), torch.tensor([[-1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0]]).double())
    torch.testing.assert_close(torch.tensor(b), torch.tensor([0.25, 0.0, 0.1, 0.0]).double())

    q = hand.sample(200, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, p = q[:, 0], q[:, 1]

    def e(phi):
        return torch.stack([torch.cos(phi), torch.sin(phi), torch.zeros_like(phi)], dim=-1)

    expected = 0.05 * e(a) + 0.04 * e(3 * a + 0.1) + (0.04 + p)[:, None] * e(2 * a + 0.35)
    torch.testing.assert_close(hand.fingertips(q)[:, 0], expected, atol=1e-14, rtol=0)
    torch.testing.assert_close(tips_from_link_poses(hand, q)[:, 0], expected, atol=1e-14, rtol=0)
    assert torch.autograd.gradcheck(hand.fingertips, (q[:4].clone().requires_grad_(),))


@pytest.mark.parametrize(
    "edit, problem",
    [
        ('<mimic joint="a" multiplier="2" offset="0.1"/>', "joint 'b' mimics 'ghost', which does not exist"),
        ('<mimic joint="a" multiplier="2" offset="0.1"/>', "mimic joints form a cycle"),
    ],
    ids=["dangling", "cycle"],
)
def test_bad_mimic_chains_are_reported(tmp_path, edit, problem):
    target = "ghost" if "ghost" in problem else "c"
    path = tmp_path / "mimicry.urdf"
    path.write_text(MIMIC_URDF.replace(edit, f'<mimic joint="{target}"/>'))
    with pytest.raises(XlhandError) as info:
        xlhand.load_hand(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


# ---------------------------------------------------------------------------------------- unlimited joints
def test_joints_without_limits_get_finite_ranges_and_a_warning(tmp_path):
    path = tmp_path / "loose.urdf"
    path.write_text(
        """<robot name="loose"><link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/>
        <joint name="spin" type="continuous"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/></joint>
        <joint name="bend" type="revolute"><parent link="l1"/><child link="l2"/><origin xyz="0 0 0.05"/>
          <axis xyz="0 1 0"/></joint>
        <joint name="slide" type="prismatic"><parent link="l2"/><child link="l3"/><origin xyz="0 0 0.05"/>
          <axis xyz="0 0 1"/><limit lower="0.1" upper="-0.1" effort="1" velocity="1"/></joint>
        </robot>"""
    )
    hand = xlhand.load_hand(path)
    assert hand.joint_names == ["spin", "bend", "slide"]
    assert torch.isfinite(hand.lower).all() and torch.isfinite(hand.upper).all()
    assert hand.lower.tolist() == pytest.approx([-math.pi, -math.pi, -0.05])
    assert hand.upper.tolist() == pytest.approx([math.pi, math.pi, 0.05])
    notes = " | ".join(hand.notes)
    assert "joint 'spin' is continuous" in notes
    assert "joint 'bend' has no usable limits" in notes
    assert "joint 'slide' has no usable limits" in notes
    q = hand.sample(100, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(hand.fingertips(q)).all()


def test_unlimited_joints_warn_through_python_warnings(tmp_path):
    from xlhand.hand.urdf import HandWarning, load_robot

    path = tmp_path / "spin.urdf"
    path.write_text('<robot name="s"><link name="a"/><link name="b"/><joint name="j" type="continuous">'
                    '<parent link="a"/><child link="b"/></joint></robot>')
    with pytest.warns(HandWarning, match="joint 'j' is continuous"):
        robot = load_robot(path)
    assert (robot.joints[0].lower, robot.joints[0].upper) == (-math.pi, math.pi)


# -------------------------------------------------------------------------------------------------- sample
@pytest.mark.parametrize("name", ["inspire", "panda"])
def test_sample_respects_limits_and_is_reproducible(name):
    hand = load(name)
    q = hand.sample(20_000, generator=torch.Generator().manual_seed(11))
    assert q.shape == (20_000, hand.dof) and q.dtype == torch.float32
    assert (q >= hand.lower).all() and (q <= hand.upper).all()
    # it covers the range: each joint gets near both of its limits
    span = hand.upper - hand.lower
    assert ((q.min(0).values - hand.lower) < 0.01 * span).all()
    assert ((hand.upper - q.max(0).values) < 0.01 * span).all()
    again = hand.sample(20_000, generator=torch.Generator().manual_seed(11))
    assert torch.equal(q, again)
    other = hand.sample(20_000, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(q, other)
    q64 = hand.sample(5, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    assert q64.dtype == torch.float64 and (q64 >= hand.lower.double()).all() and (q64 <= hand.upper.double()).all()
