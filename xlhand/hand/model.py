"""The hand model: actuated joints, limits, fingertips and the canonical frame, with batched FK."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from xlhand.errors import XlhandError
from xlhand.hand.fingertips import assign_roles, find_fingers, find_thumb, fingers_from_tips
from xlhand.hand.frame import estimate_mount
from xlhand.hand.kinematics import FingertipFK, FullChainFK, actuated_joints, kinematics_hash
from xlhand.hand.rotation import transform
from xlhand.hand.spec import ROLES, Fingertip, HandSpec, validate_name
from xlhand.hand.urdf import HandWarning, Robot, load_robot


@dataclass(kw_only=True, eq=False)
class Hand:
    """A hand ready for learning: ``q`` is ``(B, dof)`` over :attr:`joint_names` (radians or metres).

    :meth:`fingertips` gives ``(B, len(fingers), 3)`` in metres in the canonical hand frame (origin at the wrist,
    fingers +z, palm +x, thumb +y), differentiable in ``q``.
    """

    name: str
    robot: Robot
    joint_names: list[str]
    lower: torch.Tensor
    upper: torch.Tensor
    tips: dict[str, Fingertip]  # role -> fingertip, in role order
    mount: np.ndarray  # 4x4, canonical <- URDF root
    mount_source: str  # "hand.toml" | "estimated"
    tips_source: str  # "hand.toml" | "detected"
    spec: HandSpec
    notes: list[str] = field(default_factory=list)

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @property
    def fingers(self) -> list[str]:
        """Finger roles present, in the order of :meth:`fingertips`' second axis."""
        return list(self.tips)

    @property
    def urdf_path(self) -> Path:
        return self.robot.path

    @cached_property
    def _fk(self) -> FingertipFK:
        return FingertipFK(self.robot, [(t.link, np.asarray(t.offset)) for t in self.tips.values()], self.mount)

    @cached_property
    def _full_fk(self) -> FullChainFK:
        return FullChainFK(self.robot, self.mount)

    @cached_property
    def kinematics_hash(self) -> str:
        return kinematics_hash(
            self.robot,
            [(t.link, np.asarray(t.offset)) for t in self.tips.values()],
            self.mount,
            self.lower.double().numpy(),
            self.upper.double().numpy(),
        )

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        """``(n, dof)`` configurations uniform within the joint limits."""
        u = torch.rand(n, self.dof, generator=generator, dtype=dtype)
        return self.lower.to(dtype) + u * (self.upper - self.lower).to(dtype)

    def fingertips(self, q: torch.Tensor) -> torch.Tensor:
        """``q (B, dof)`` -> fingertip positions ``(B, len(fingers), 3)``, metres, canonical frame."""
        if q.ndim != 2 or q.shape[1] != self.dof:
            raise ValueError(f"{self.name}: expected q of shape (B, {self.dof}), got {tuple(q.shape)}")
        return self._fk(q)

    def link_poses(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every link's pose ``(B, 4, 4)`` in the canonical frame (pytorch-kinematics full chain)."""
        return self._full_fk(q)

    def normalize(self, q: torch.Tensor) -> torch.Tensor:
        """Joint values -> [-1, 1] by the limits."""
        lo, hi = self.lower.to(q), self.upper.to(q)
        return 2 * (q - lo) / (hi - lo) - 1

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.lower.to(x), self.upper.to(x)
        return lo + (x + 1) * 0.5 * (hi - lo)


def hand_from_spec(spec: HandSpec) -> Hand:
    """Build a :class:`Hand` from a validated :class:`HandSpec` (fingertips and mount detected when absent)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HandWarning)
        robot = load_robot(spec.urdf)
    notes = [str(w.message).split(": ", 1)[-1] for w in caught if issubclass(w.category, HandWarning)]
    actuated = actuated_joints(robot)
    if not actuated:
        raise XlhandError("the URDF has no movable joints; a hand needs at least one", spec.urdf)
    names = [j.name for j in actuated]
    lower = np.array([j.lower for j in actuated])
    upper = np.array([j.upper for j in actuated])
    for joint, (lo, hi) in spec.limits.items():
        if joint not in names:
            raise XlhandError(f"joint {joint!r} is not an actuated joint of {spec.urdf.name}", spec.path, f"limits.{joint}")
        lower[names.index(joint)], upper[names.index(joint)] = lo, hi

    source = spec.path or spec.urdf
    if spec.fingertips:
        for role, tip in spec.fingertips.items():
            if tip.link not in robot.child_joints:
                raise XlhandError(f"fingertip link {tip.link!r} does not exist in {spec.urdf.name}", source,
                                  f"fingertips.{role}")
            if not any(j.movable for j in robot.chain_to(tip.link)):
                raise XlhandError(f"fingertip link {tip.link!r} does not move with any joint", source,
                                  f"fingertips.{role}")
        tips = dict(spec.fingertips)
        fingers = fingers_from_tips(robot, [(t.link, np.asarray(t.offset)) for t in tips.values()])
        thumb = list(tips).index("thumb") if "thumb" in tips else None
        tips_source = "hand.toml"
    else:
        fingers = find_fingers(robot)
        if not fingers:
            raise XlhandError("no fingers found: no leaf link moves with a joint; name them in [fingertips]", source)
        thumb = find_thumb(robot, fingers)
        tips = None
        tips_source = "detected"

    if spec.mount_xyz is not None:
        mount = transform(spec.mount_xyz, spec.mount_rpy)
        mount_source = "hand.toml"
    else:
        mount, frame_notes = estimate_mount(robot, fingers, thumb)
        notes.extend(frame_notes)
        mount_source = "estimated"

    if tips is None:
        roles = assign_roles(robot, fingers, thumb, mount[1, :3])
        tips = {role: Fingertip(f.tip_link, tuple(float(v) for v in f.offset)) for role, f in roles.items()}
        if "thumb" not in tips:
            notes.append("no thumb found: the fingers are alike (no finger opposes the others)")
    return Hand(
        name=spec.name,
        robot=robot,
        joint_names=names,
        lower=torch.tensor(lower, dtype=torch.float32),
        upper=torch.tensor(upper, dtype=torch.float32),
        tips={r: tips[r] for r in ROLES if r in tips},
        mount=mount,
        mount_source=mount_source,
        tips_source=tips_source,
        spec=spec,
        notes=notes,
    )


def spec_for_urdf(path: Path, name: str | None = None, fingertips: dict[str, str] | None = None) -> HandSpec:
    """A :class:`HandSpec` for a bare URDF: the name from the file (or ``name``), fingertips detected unless given."""
    if name is None:
        stem = "".join(c if c.isalnum() else "_" for c in path.stem.lower()).strip("_")
        name = stem if stem[:1].isalpha() else f"hand_{stem}"
        name = name[:64]
    validate_name(name, path, "name")
    tips = {}
    for role, link in (fingertips or {}).items():
        if role not in ROLES:
            raise XlhandError(f"unknown finger role {role!r} (allowed: {', '.join(ROLES)})", path, "fingertips")
        tips[role] = Fingertip(link)
    return HandSpec(name=name, urdf=path.resolve(), fingertips={r: tips[r] for r in ROLES if r in tips})
