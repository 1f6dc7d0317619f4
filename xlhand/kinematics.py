"""Batched, differentiable forward kinematics for hands.

Two paths over the same validated :class:`~xlhand.urdf.Robot`:

- :func:`build_pk_chain` + :class:`FullChainFK`: pytorch-kinematics over every link (the general path, used for
  link poses and rendering, and as the baseline the fast path is checked and benchmarked against);
- :class:`FingertipFK`: a fused fingertip-only chain. Each finger is the product, from the tip up to the root,
  of one constant-plus-trigonometric 3x4 map per movable joint; fixed joints are folded into constants, mimic
  joints are a linear map of the actuated joints, and all fingers advance together with one batched matmul per
  chain depth.

Conventions: ``q`` is ``(B, dof)`` in radians (revolute) or metres (prismatic), actuated joints only, in URDF
file order. Points are metres in the canonical hand frame (see ``docs/hand-toml.md``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from .errors import XlhandError
from .urdf import Joint, Robot, skew


def actuated_joints(robot: Robot) -> list[Joint]:
    """Movable, non-mimic joints in URDF file order: the action vector of the hand."""
    return [j for j in robot.joints if j.movable and j.mimic is None]


def mimic_map(robot: Robot, actuated: list[Joint]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Linear map from actuated joints to every movable joint: ``q_full = q_act @ W + b``.

    Mimic chains (a mimic of a mimic) are composed. Returns ``W (dof, n_movable)``, ``b (n_movable,)`` and the
    movable joint names in file order.
    """
    index = {j.name: i for i, j in enumerate(actuated)}
    movable = [j for j in robot.joints if j.movable]
    W = np.zeros((len(actuated), len(movable)))
    b = np.zeros(len(movable))
    for col, joint in enumerate(movable):
        mult, off, j = 1.0, 0.0, joint
        while j.mimic is not None:
            name, m, o = j.mimic
            off = off + mult * o
            mult = mult * m
            j = robot.joint_by_name[name]
        W[index[j.name], col] = mult
        b[col] = off
    return W, b, [j.name for j in movable]


# ---------------------------------------------------------------------------------------------------------------
# Fast fingertip FK


class FingertipFK:
    """Fingertip positions ``(B, F, 3)`` from actuated joints ``(B, dof)``, fused and differentiable.

    For a joint with parent-side constant transform ``A = [R_A | t_A]`` (the mount, fixed joints and the joint's
    origin folded together) and unit axis ``k`` with skew matrix ``K``, the point ``v`` in the child frame maps to
    ``R_A (P v + sin(a) K v + cos(a) (-K^2) v) + t_A + a * R_A k_lin`` with ``P = I + K^2`` for a revolute joint
    (Rodrigues) and ``P = I, K = 0, k_lin = k`` for a prismatic one. Stacking ``[R_A P | R_A K | -R_A K^2]`` as a
    ``(3, 9)`` matrix per finger and depth gives one ``bmm`` per depth for all fingers.
    """

    def __init__(self, robot: Robot, tips: list[tuple[str, np.ndarray]], mount: np.ndarray):
        """``tips``: (link, point in link frame) per finger; ``mount``: 4x4 canonical <- root transform."""
        actuated = actuated_joints(robot)
        W, b, movable_names = mimic_map(robot, actuated)
        col = {name: i for i, name in enumerate(movable_names)}
        chains = []
        for link, point in tips:
            if link not in robot.child_joints:
                raise XlhandError(f"fingertip link {link!r} does not exist", robot.path)
            chains.append(robot.chain_to(link))
        depth = max(1, max(sum(j.movable for j in c) for c in chains))
        F = len(tips)
        mats = np.zeros((depth, F, 3, 9))
        mats[:, :, :, 0:3] = np.eye(3)  # padding steps are the identity
        trans = np.zeros((depth, F, 3))
        lin = np.zeros((depth, F, 3))
        cols = np.zeros((depth, F), dtype=np.int64)
        padded = np.ones((depth, F), dtype=bool)
        tip_points = np.zeros((F, 3))
        for f, (chain, (_, point)) in enumerate(zip(chains, tips)):
            # split the chain into (constant before joint, joint) pairs; the tail folds into the tip point
            pending = mount.copy()
            steps = []
            for j in chain:
                pending = pending @ j.origin
                if j.movable:
                    steps.append((pending, j))
                    pending = np.eye(4)
            tail = pending @ np.append(np.asarray(point, dtype=np.float64), 1.0)
            tip_points[f] = tail[:3]
            # steps are applied tip first: depth 0 is the most distal joint
            for d, (A, j) in enumerate(reversed(steps)):
                RA, tA = A[:3, :3], A[:3, 3]
                if j.type == "revolute":
                    K = skew(j.axis)
                    P = np.eye(3) + K @ K
                    blocks = [RA @ P, RA @ K, -RA @ K @ K]
                else:
                    blocks = [RA, np.zeros((3, 3)), np.zeros((3, 3))]
                    lin[d, f] = RA @ j.axis
                # row-vector form: u = v @ [B0^T | B1^T | B2^T]
                mats[d, f] = np.concatenate([blk.T for blk in blocks], axis=1)
                trans[d, f] = tA
                cols[d, f] = col[j.name]
                padded[d, f] = False
        # angle of every (depth, finger) step as a linear function of q: angles = q @ Wd + bd
        Wd = W[:, cols.reshape(-1)] * (~padded.reshape(-1))
        bd = b[cols.reshape(-1)] * (~padded.reshape(-1))
        self.depth, self.fingers, self.dof = depth, F, len(actuated)
        self._np = {
            "mats": mats,
            "trans": trans,
            "lin": lin,
            "W": Wd,
            "b": bd,
            "tip": tip_points,
        }
        self._has_lin = bool(np.any(lin))
        self._cache: dict[tuple, dict[str, torch.Tensor]] = {}

    def _consts(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        key = (dtype, device)
        if key not in self._cache:
            self._cache[key] = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in self._np.items()}
        return self._cache[key]

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """``q (B, dof)`` -> fingertips ``(B, F, 3)``."""
        c = self._consts(q.dtype, q.device)
        B = q.shape[0]
        D, F = self.depth, self.fingers
        angles = torch.addmm(c["b"], q, c["W"]).T.reshape(D, F, B, 1)  # (D, F, B, 1)
        s, co = torch.sin(angles), torch.cos(angles)
        v = c["tip"][:, None, :].expand(F, B, 3)
        mats, trans, lin = c["mats"], c["trans"], c["lin"]
        for d in range(D):
            u = torch.bmm(v, mats[d])  # (F, B, 9)
            v = u[..., 0:3] + s[d] * u[..., 3:6] + co[d] * u[..., 6:9] + trans[d][:, None, :]
            if self._has_lin:
                v = v + angles[d] * lin[d][:, None, :]
        return v.transpose(0, 1)


# ---------------------------------------------------------------------------------------------------------------
# Full-chain FK through pytorch-kinematics


def build_pk_chain(robot: Robot, mount: np.ndarray | None = None):
    """A ``pytorch_kinematics.Chain`` built from the validated tree (not by re-parsing the URDF).

    ``mount`` (4x4, canonical <- root) becomes the root frame's offset, so link poses are in the canonical frame.
    """
    import pytorch_kinematics as pk
    import pytorch_kinematics.transforms as tf

    def tf_of(m: np.ndarray) -> "tf.Transform3d":
        return tf.Transform3d(matrix=torch.as_tensor(m, dtype=torch.float32)[None])

    def build(link: str, joint: Joint | None) -> "pk.Frame":
        if joint is None:
            pj = pk.Joint(name=None, offset=None, joint_type="fixed")
        else:
            pj = pk.Joint(
                name=joint.name,
                offset=tf_of(joint.origin),
                joint_type=joint.type,
                axis=tuple(float(a) for a in joint.axis),
                limits=(joint.lower, joint.upper),
            )
        frame = pk.Frame(link, link=pk.Link(link, offset=None), joint=pj)
        frame.children = [build(j.child, j) for j in robot.child_joints[link]]
        return frame

    root = build(robot.root, None)
    if mount is not None:
        # a virtual canonical-frame root holding the mount as a fixed joint
        top = pk.Frame("__canonical__", link=pk.Link("__canonical__", offset=None), joint=pk.Joint())
        root.joint = pk.Joint(name="__mount__", offset=tf_of(mount), joint_type="fixed")
        top.children = [root]
        root = top
    return pk.Chain(root)


class FullChainFK:
    """Every link's pose ``(B, 4, 4)`` in the canonical frame through pytorch-kinematics, with mimic expansion."""

    def __init__(self, robot: Robot, mount: np.ndarray):
        self.chain = build_pk_chain(robot, mount)
        actuated = actuated_joints(robot)
        W, b, names = mimic_map(robot, actuated)
        order = self.chain.get_joint_parameter_names()
        idx = [names.index(n) for n in order]
        self._W = W[:, idx]
        self._b = b[idx]
        self._dtype = None

    def to(self, dtype: torch.dtype, device="cpu") -> "FullChainFK":
        self.chain = self.chain.to(dtype=dtype, device=device)
        self._dtype = dtype
        return self

    def full_q(self, q: torch.Tensor) -> torch.Tensor:
        W = torch.as_tensor(self._W, dtype=q.dtype, device=q.device)
        b = torch.as_tensor(self._b, dtype=q.dtype, device=q.device)
        return torch.addmm(b, q, W)

    def __call__(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._dtype != q.dtype:
            self.to(q.dtype, q.device)
        poses = self.chain.forward_kinematics(self.full_q(q))
        return {name: t.get_matrix() for name, t in poses.items() if name != "__canonical__"}


def kinematics_hash(robot: Robot, tips: list[tuple[str, np.ndarray]], mount: np.ndarray, lower, upper) -> str:
    """A short hash of everything that determines fingertip FK and the action normalisation."""
    h = hashlib.sha256()
    for j in robot.joints:
        h.update(j.name.encode())
        h.update(j.type.encode())
        h.update(np.round(j.origin, 9).tobytes())
        h.update(np.round(j.axis, 9).tobytes())
        h.update(repr(j.mimic).encode())
    for link, point in tips:
        h.update(link.encode())
        h.update(np.round(np.asarray(point, dtype=np.float64), 9).tobytes())
    h.update(np.round(mount, 9).tobytes())
    h.update(np.round(np.asarray(lower, dtype=np.float64), 9).tobytes())
    h.update(np.round(np.asarray(upper, dtype=np.float64), 9).tobytes())
    return h.hexdigest()[:16]
