"""The baseline the latent policy is measured against: the paper's "pi0 + kinematic retargeting". A joint-space
policy of the same architecture and budget, trained on one hand's demonstrations (its action is that hand's
normalised joints, then the same hand-free arm part), whose joint chunks are retargeted frame by frame to the
hand being driven with ``dex-retargeting``'s vector retargeting of thumb-to-finger vectors (configured from
xlhand's fingertip map). The driven hand's measured posture is retargeted the other way for the policy's state.

Needs the ``baseline`` extra (``pip install 'xlhand[baseline]'``: dex-retargeting, which brings pinocchio).
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from xlhand.errors import XlhandError
from xlhand.policy.arm import arm_features, wrist_from_arm
from xlhand.sim.demonstrator import hand_scale

TIP_LINK = "xlhand_tip_{}"


def _tip_urdf(hand, folder: Path) -> Path:
    """A copy of the hand's URDF with a fixed link at each fingertip point (dex-retargeting targets links)."""
    tree = ET.parse(hand.urdf_path)
    root = tree.getroot()
    for role, tip in hand.tips.items():
        ET.SubElement(root, "link", name=TIP_LINK.format(role))
        j = ET.SubElement(root, "joint", name=TIP_LINK.format(role) + "_joint", type="fixed")
        ET.SubElement(j, "parent", link=tip.link)
        ET.SubElement(j, "child", link=TIP_LINK.format(role))
        ET.SubElement(j, "origin", xyz=" ".join(f"{v:.9g}" for v in tip.offset), rpy="0 0 0")
    for mesh in root.iter("mesh"):  # kinematics only: meshes are not needed and may not resolve from the copy
        mesh.attrib["filename"] = str((hand.urdf_path.parent / mesh.attrib.get("filename", "")).resolve()) \
            if "://" not in mesh.attrib.get("filename", "") else mesh.attrib["filename"]
    path = folder / f"{hand.name}_tips.urdf"
    tree.write(path)
    return path


@dataclass
class VectorRetargeter:
    """Postures of ``source`` -> postures of ``target`` matching the thumb-to-finger vectors of the finger pairs
    both hands have (the vectors scaled by the ratio of the hands' sizes, as dex-retargeting's scaling factor is
    meant), sequentially warm-started as dex-retargeting does."""

    source: object  # Hand
    target: object  # Hand
    _ret: object = field(default=None, repr=False)

    def __post_init__(self):
        try:
            from dex_retargeting.retargeting_config import RetargetingConfig
        except ImportError:
            raise XlhandError("the retargeting baseline needs dex-retargeting (pip install 'xlhand[baseline]')") \
                from None
        s, t = self.source, self.target
        if "thumb" not in s.fingers or "thumb" not in t.fingers:
            raise XlhandError(f"vector retargeting from {s.name} to {t.name} needs a thumb on both hands")
        self.roles = [f for f in s.fingers if f != "thumb" and f in t.fingers]
        if not self.roles:
            raise XlhandError(f"{s.name} and {t.name} share no thumb-to-finger pair")
        self._folder = tempfile.TemporaryDirectory(prefix="xlhand-rt-")
        urdf = _tip_urdf(t, Path(self._folder.name))
        n = len(self.roles)
        cfg = RetargetingConfig(
            type="vector", urdf_path=str(urdf), target_joint_names=list(t.joint_names),
            target_origin_link_names=[TIP_LINK.format("thumb")] * n,
            target_task_link_names=[TIP_LINK.format(r) for r in self.roles],
            target_link_human_indices=np.array([[0] * n, list(range(1, n + 1))]),
            scaling_factor=hand_scale(t) / hand_scale(s), low_pass_alpha=-1.0)
        self._ret = cfg.build()
        names = self._ret.optimizer.robot.dof_joint_names
        self._order = [names.index(j) for j in t.joint_names]
        self._rot = np.asarray(t.mount, dtype=np.float64)[:3, :3].T  # canonical -> the target's URDF root frame
        self._si = [s.fingers.index(f) for f in ["thumb", *self.roles]]
        self._lo, self._hi = t.lower.double().numpy(), t.upper.double().numpy()

    def reset(self, q_target: np.ndarray | None = None) -> None:
        """Start a new sequence (warm start from ``q_target``, or the middle of the limits)."""
        q = 0.5 * (self._lo + self._hi) if q_target is None else np.asarray(q_target, dtype=np.float64)
        full = np.zeros(self._ret.optimizer.robot.dof)
        full[self._order] = q
        self._ret.set_qpos(full)

    def __call__(self, q_source: np.ndarray) -> np.ndarray:
        """``(T, dof_source)`` -> ``(T, dof_target)``, frame by frame."""
        with torch.no_grad():
            tips = self.source.fingertips(torch.tensor(np.atleast_2d(q_source), dtype=torch.float32)).double()
        tips = tips.numpy()[:, self._si]
        out = []
        for frame in tips:
            vec = (frame[1:] - frame[0]) @ self._rot.T
            q = self._ret.retarget(vec)
            out.append(np.clip(q[self._order], self._lo, self._hi))
        return np.array(out)


@dataclass
class RetargetRunner:
    """A joint-space policy of ``source`` driving ``hand`` through retargeting: the :class:`HandRunner`
    interface (``chunk``) for :func:`xlhand.policy.rollout.policy_episode`."""

    policy: object  # LatentPolicy whose "latents" are the source hand's normalised joints
    source: object  # Hand
    hand: object  # Hand driven
    scale: float = field(default=None)

    def __post_init__(self):
        if self.scale is None:
            self.scale = hand_scale(self.hand)
        self.same = self.source.name == self.hand.name and self.source.kinematics_hash == self.hand.kinematics_hash
        self.forward = None if self.same else VectorRetargeter(self.source, self.hand)
        self.backward = None if self.same else VectorRetargeter(self.hand, self.source)
        self._tokens: dict = {}

    def reset(self) -> None:
        if not self.same:
            self.forward.reset()
            self.backward.reset()

    def chunk(self, image, text, q, wrist_pose, generator=None, steps=None, frames=None):
        from xlhand.policy.rollout import instruction

        tok, weights = instruction(self.policy, text, self._tokens)
        q_src = q[None] if self.same else self.backward(q[None])
        x = self.source.normalize(torch.as_tensor(q_src, dtype=torch.float32))
        # the arm state is the driven hand's own (its anchor fingertips, through its FK)
        arm = arm_features(self.hand, q[None], np.asarray(wrist_pose)[None], weights, self.scale)
        state = torch.cat([x, torch.as_tensor(arm)], 1)
        img = torch.as_tensor(np.ascontiguousarray(image))[None]
        actions = self.policy.sample(img, tok, state, generator=generator, steps=steps)[0][:frames]  # retarget
        # only the frames that will be played: one frame costs about 12 ms
        D = self.policy.config.latent_dim
        q_source = self.source.denormalize(actions[:, :D].clamp(-1, 1)).double().numpy()
        qs = q_source if self.same else self.forward(q_source)
        pos, rot = wrist_from_arm(self.hand, qs, actions[:, D:].double().numpy(), weights, self.scale)
        return qs, pos, rot


@dataclass(frozen=True)
class BaselineController:
    """The baseline in simulation workers (picklable, like ``PolicyController``): a joint-space policy file and
    the space or bundle the driven hands come from."""

    policy: str
    space: str | None = None
    execute_steps: int = 16

    def load(self):
        from xlhand.loading import load_space
        from xlhand.policy.io import load_policy

        if self not in _LOADED:
            model, _ = load_policy(Path(self.policy))
            if not model.config.joint_hand:
                raise XlhandError("not a joint-space policy (train it with joint_space=True)", Path(self.policy))
            _LOADED[self] = (model, load_space(self.space))
        return _LOADED[self]

    def episode_fn(self, hand):
        from xlhand.policy.rollout import policy_episode
        from xlhand.registry import load_hand

        model, space = self.load()
        name = model.config.joint_hand
        source = space.hand(name) if name in space.hands else load_hand(name)
        runner = RetargetRunner(model, source, hand)
        n = self.execute_steps

        def run(world, planner, task, seed, render=False):
            return policy_episode(world, planner, task, seed, runner, execute_steps=n, render=render)

        return run


_LOADED: dict = {}
