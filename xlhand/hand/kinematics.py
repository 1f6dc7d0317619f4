"""Batched, differentiable forward kinematics for hands.

Two paths over the same validated :class:`~xlhand.hand.urdf.Robot`:

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
from torch.autograd.function import once_differentiable

from xlhand.errors import XlhandError
from xlhand.hand.rotation import skew
from xlhand.hand.urdf import Joint, Robot


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
    origin folded together) and unit axis ``k`` with skew matrix ``K``, a point ``v`` in the joint's child frame
    maps to ``v' = M0 v + sin(a) M1 v + cos(a) M2 v + t_A + a l`` with ``M0 = R_A (I + K^2)``, ``M1 = R_A K``,
    ``M2 = -R_A K^2``, ``l = 0`` for a revolute joint (Rodrigues) and ``M0 = R_A``, ``M1 = M2 = 0``, ``l = R_A k``
    for a prismatic one. The fingertip point is carried from the tip up to the root, one joint per step, all
    fingers at once: points are stored homogeneous, ``(F, 4, B)``, so that each step is one ``bmm`` of the
    stacked ``(9, 4)`` matrix ``[M0 | t_A; M1 | 0; M2 | 0]`` with a wide ``(4, B)`` operand, then two fused
    multiply-adds.

    The backward pass is analytic (:class:`_FingertipFunction`): the gradient ``g`` is carried back down with the
    transposed matrices, ``g_prev = J^T g`` with ``J = M0 + sin(a) M1 + cos(a) M2`` (the step's rotation), and a
    step's angle gets ``g_prev . (K v + k_lin)`` (``v`` the point entering the step; ``K = 0, k_lin = k`` for a
    prismatic joint), since ``dv'/da = J (K v + k_lin)``. It supports first derivatives only: differentiating the
    gradient again raises an error rather than returning a wrong value.
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
        M = np.zeros((depth, F, 9, 4))  # [M0 | t_A; M1 | 0; M2 | 0] per step: u = M [v; 1]
        M[:, :, 0:3, 0:3] = np.eye(3)  # padding steps are the identity
        K = np.zeros((depth, F, 3, 4))  # tangent of the step's angle in the child frame: [K | k_lin] [v; 1]
        lin = np.zeros((depth, F, 3, 1))
        cols = np.zeros((depth, F), dtype=np.int64)
        padded = np.ones((depth, F), dtype=bool)
        tip_points = np.ones((F, 4, 1))
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
            tip_points[f, :3, 0] = tail[:3]
            # steps are applied tip first: depth 0 is the most distal joint
            for d, (A, j) in enumerate(reversed(steps)):
                RA, tA = A[:3, :3], A[:3, 3]
                if j.type == "revolute":
                    Kj = skew(j.axis)
                    M[d, f, :, 0:3] = np.concatenate([RA @ (np.eye(3) + Kj @ Kj), RA @ Kj, -RA @ Kj @ Kj])
                    K[d, f, :, 0:3] = Kj
                else:
                    M[d, f, :, 0:3] = np.concatenate([RA, np.zeros((3, 3)), np.zeros((3, 3))])
                    lin[d, f, :, 0] = RA @ j.axis
                    K[d, f, :, 3] = j.axis
                M[d, f, 0:3, 3] = tA
                cols[d, f] = col[j.name]
                padded[d, f] = False
        # angle of every (depth, finger) step as a linear function of q: angles = q @ Wd + bd
        Wd = W[:, cols.reshape(-1)] * (~padded.reshape(-1))
        bd = b[cols.reshape(-1)] * (~padded.reshape(-1))
        self.depth, self.fingers, self.dof = depth, F, len(actuated)
        self._np = {
            "M": M,
            "MT": np.concatenate([M[:, :, 3 * i:3 * i + 3, 0:3].swapaxes(-1, -2) for i in range(3)], axis=2),
            "K": K,
            "lin": lin,
            "WT": np.ascontiguousarray(Wd.T),  # (D*F, dof)
            "b": bd[:, None],  # (D*F, 1)
            "tip": tip_points,
        }
        self._has_lin = bool(np.any(lin))
        self._cache: dict[tuple, dict[str, torch.Tensor]] = {}

    @classmethod
    def combine(cls, parts: list[tuple["FingertipFK", np.ndarray, np.ndarray]], width: int) -> "FingertipFK":
        """One FK over several hands at once, fed normalised joints.

        ``parts``: per hand ``(fk, scale, offset)`` with ``q = x * scale + offset`` (the denormalisation). The
        combined input is ``(B, len(parts) * width)``: hand ``i``'s normalised joints in columns
        ``[i * width, i * width + dof_i)``; columns past a hand's ``dof`` are ignored (padding, zero gradient).
        Output fingers are the hands' fingers in order. Chains shorter than the deepest are padded with identity
        steps, so one pass of batched matmuls advances every finger of every hand.
        """
        D = max(fk.depth for fk, _, _ in parts)
        F = sum(fk.fingers for fk, _, _ in parts)
        M = np.zeros((D, F, 9, 4))
        M[:, :, 0:3, 0:3] = np.eye(3)
        K = np.zeros((D, F, 3, 4))
        lin = np.zeros((D, F, 3, 1))
        WT = np.zeros((D, F, len(parts) * width))
        b = np.zeros((D, F))
        tip = np.ones((F, 4, 1))
        f0 = 0
        for i, (fk, scale, offset) in enumerate(parts):
            if fk.dof > width:
                raise ValueError(f"a hand with {fk.dof} joints does not fit in blocks of {width}")
            d, f, a = fk.depth, fk.fingers, fk._np
            sl = slice(f0, f0 + f)
            M[:d, sl], K[:d, sl], lin[:d, sl], tip[sl] = a["M"], a["K"], a["lin"], a["tip"]
            wt = a["WT"].reshape(d, f, fk.dof)  # angle = q @ WT.T + b, with q = x * scale + offset
            WT[:d, sl, i * width:i * width + fk.dof] = wt * np.asarray(scale, dtype=np.float64)
            b[:d, sl] = a["b"].reshape(d, f) + wt @ np.asarray(offset, dtype=np.float64)
            f0 += f
        out = cls.__new__(cls)
        out.depth, out.fingers, out.dof = D, F, len(parts) * width
        out._np = {
            "M": M,
            "MT": np.concatenate([M[:, :, 3 * i:3 * i + 3, 0:3].swapaxes(-1, -2) for i in range(3)], axis=2),
            "K": K,
            "lin": lin,
            "WT": np.ascontiguousarray(WT.reshape(D * F, -1)),
            "b": b.reshape(D * F, 1),
            "tip": tip,
        }
        out._has_lin = bool(np.any(lin))
        out._cache = {}
        return out

    def _consts(self, dtype: torch.dtype, device: torch.device) -> dict:
        """The constants as tensors of ``dtype``, split per chain depth once (indexing them inside the loops cost
        an op each)."""
        key = (dtype, device)
        if key not in self._cache:
            a = self._np
            t = {k: torch.as_tensor(np.ascontiguousarray(v), dtype=dtype, device=device) for k, v in a.items()}
            tip3 = t["tip"][:, 0:3]
            self._cache[key] = {
                "WT": t["WT"], "b": t["b"],
                "Mr": t["M"][..., 0:3].contiguous().unbind(0),  # (F, 9, 3) per depth: [M0; M1; M2]
                "Mt": t["M"][..., 3:4].contiguous().unbind(0),  # (F, 9, 1): [t_A; 0; 0]
                "MT": t["MT"].unbind(0),  # (F, 9, 3): [M0^T; M1^T; M2^T]
                "K3": t["K"][..., 0:3].contiguous().unbind(0),  # (F, 3, 3)
                "Kl": t["K"][..., 3:4].contiguous().unbind(0),  # (F, 3, 1)
                "lin": t["lin"].unbind(0),
                "u0": torch.bmm(t["M"][0], t["tip"]),  # (F, 9, 1): the first step's product is a constant
                "tangent0": torch.bmm(t["K"][0], t["tip"]),  # (F, 3, 1)
                "tip3": tip3,
            }
        return self._cache[key]

    def _forward(self, q: torch.Tensor, keep: bool = False):
        """``q (B, dof)`` -> fingertips ``(F, 3, B)``, plus (sin, cos, angles, points entering each step after
        the first, ``(F, 3, B)``) when ``keep``."""
        c = self._consts(q.dtype, q.device)
        B = q.shape[0]
        D, F = self.depth, self.fingers
        angles = torch.addmm(c["b"], c["WT"], q.T).view(D, F, 1, B)
        s, co = torch.sin(angles), torch.cos(angles)
        s_d, co_d, a_d = s.unbind(0), co.unbind(0), angles.unbind(0)
        entering = []
        u = c["u0"]
        for d in range(D):
            if d > 0:
                if keep:
                    entering.append(v)
                u = torch.baddbmm(c["Mt"][d], c["Mr"][d], v)  # (F, 9, B): [M0 v + t; M1 v; M2 v]
            u0, u1, u2 = u.view(F, 3, 3, u.shape[2]).unbind(1)
            v = torch.addcmul(torch.addcmul(u0, s_d[d], u1), co_d[d], u2)
            if self._has_lin:
                v = torch.addcmul(v, a_d[d], c["lin"][d])
        if v.shape[2] != B:  # D == 1: the tip through one constant step broadcast to the batch
            v = v.expand(F, 3, B).contiguous()
        return v, (s, co, entering)

    def _backward(self, grad: torch.Tensor, s: torch.Tensor, co: torch.Tensor, entering,
                  fib: bool = False) -> torch.Tensor:
        """``grad (B, F, 3)`` (or ``(F, 3, B)`` with ``fib``) on the fingertips -> gradient ``(B, dof)`` on ``q``."""
        c = self._consts(grad.dtype, grad.device)
        D, F = self.depth, self.fingers
        g = grad if fib else grad.permute(1, 2, 0)  # (F, 3, B)
        B = g.shape[2]
        s_d, co_d = s.unbind(0), co.unbind(0)
        g_angles = [None] * D
        for d in range(D - 1, -1, -1):
            w0, w1, w2 = torch.bmm(c["MT"][d], g).view(F, 3, 3, B).unbind(1)  # M0^T g, M1^T g, M2^T g
            g = torch.addcmul(torch.addcmul(w0, s_d[d], w1), co_d[d], w2)
            # the angle's gradient: g . (K v + k_lin), v the point entering the step
            tangent = c["tangent0"][:, 0:3] if d == 0 else torch.baddbmm(c["Kl"][d], c["K3"][d], entering[d - 1])
            g_angles[d] = (g * tangent).sum(1)
        return torch.mm(torch.stack(g_angles).view(D * F, B).T, c["WT"])

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """``q (B, dof)`` -> fingertips ``(B, F, 3)``."""
        if q.requires_grad and torch.is_grad_enabled():
            return _FingertipFunction.apply(q, self, False)
        return self._forward(q)[0].permute(2, 0, 1).contiguous()

    def points(self, qT: torch.Tensor) -> torch.Tensor:
        """``qT (dof, B)`` (joints by columns) -> fingertips ``(F, 3, B)``: the layout the training step works in,
        with no transposing copies on the way in or out."""
        if qT.requires_grad and torch.is_grad_enabled():
            return _FingertipFunction.apply(qT.T, self, True)
        return self._forward(qT.T)[0]


class _FingertipFunction(torch.autograd.Function):
    """:class:`FingertipFK` with its analytic backward (first derivatives); ``fib`` selects the ``(F, 3, B)``
    output layout instead of ``(B, F, 3)``."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, fk: FingertipFK, fib: bool) -> torch.Tensor:
        tips, (s, co, entering) = fk._forward(q.detach(), keep=True)
        ctx.fk, ctx.fib = fk, fib
        ctx.save_for_backward(s, co, *entering)
        return tips if fib else tips.permute(2, 0, 1).contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        s, co, *entering = ctx.saved_tensors
        return ctx.fk._backward(grad, s, co, entering, fib=ctx.fib), None, None


# ---------------------------------------------------------------------------------------------------------------
# Full-chain FK through pytorch-kinematics


def build_pk_chain(robot: Robot, mount: np.ndarray | None = None, dtype: torch.dtype = torch.float32,
                   device="cpu"):
    """A ``pytorch_kinematics.Chain`` built from the validated tree (not by re-parsing the URDF).

    ``mount`` (4x4, canonical <- root) becomes the root frame's offset, so link poses are in the canonical frame.
    The constant transforms go from the float64 tree straight to ``dtype`` (building in float32 and converting
    later would leave float64 FK with float32-rounded geometry, about 1e-8 m off).
    """
    import pytorch_kinematics as pk
    import pytorch_kinematics.transforms as tf

    def tf_of(m: np.ndarray) -> "tf.Transform3d":
        return tf.Transform3d(matrix=torch.as_tensor(m, dtype=dtype, device=device)[None], dtype=dtype,
                              device=device)

    def build(link: str, joint: Joint | None) -> "pk.Frame":
        if joint is None:
            pj = pk.Joint(name=None, offset=None, joint_type="fixed", dtype=dtype, device=device)
        else:
            pj = pk.Joint(
                name=joint.name,
                offset=tf_of(joint.origin),
                joint_type=joint.type,
                axis=torch.as_tensor(joint.axis, dtype=dtype, device=device),
                dtype=dtype,
                device=device,
                limits=(joint.lower, joint.upper),
            )
        frame = pk.Frame(link, link=pk.Link(link, offset=None), joint=pj)
        frame.children = [build(j.child, j) for j in robot.child_joints[link]]
        return frame

    root = build(robot.root, None)
    if mount is not None:
        # a virtual canonical-frame root holding the mount as a fixed joint
        top = pk.Frame("__canonical__", link=pk.Link("__canonical__", offset=None),
                       joint=pk.Joint(dtype=dtype, device=device))
        root.joint = pk.Joint(name="__mount__", offset=tf_of(mount), joint_type="fixed", dtype=dtype, device=device)
        top.children = [root]
        root = top
    return pk.Chain(root, dtype=dtype, device=device)


class FullChainFK:
    """Every link's pose ``(B, 4, 4)`` in the canonical frame through pytorch-kinematics, with mimic expansion."""

    def __init__(self, robot: Robot, mount: np.ndarray):
        self._robot, self._mount = robot, mount
        self.chain = build_pk_chain(robot, mount)
        actuated = actuated_joints(robot)
        W, b, names = mimic_map(robot, actuated)
        order = self.chain.get_joint_parameter_names()
        idx = [names.index(n) for n in order]
        self._W = W[:, idx]
        self._b = b[idx]
        self._key = (torch.float32, torch.device("cpu"))

    def to(self, dtype: torch.dtype, device="cpu") -> "FullChainFK":
        """Rebuild the chain in ``dtype`` on ``device`` (from the float64 tree, not by converting the chain)."""
        self.chain = build_pk_chain(self._robot, self._mount, dtype=dtype, device=device)
        self._key = (dtype, torch.device(device))
        return self

    def full_q(self, q: torch.Tensor) -> torch.Tensor:
        W = torch.as_tensor(self._W, dtype=q.dtype, device=q.device)
        b = torch.as_tensor(self._b, dtype=q.dtype, device=q.device)
        return torch.addmm(b, q, W)

    def __call__(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._key != (q.dtype, q.device):
            self.to(q.dtype, q.device)
        poses = self.chain.forward_kinematics(self.full_q(q))
        return {name: t.get_matrix() for name, t in poses.items() if name != "__canonical__"}


def _canon(x) -> bytes:
    """Bytes of ``x`` rounded to 1e-9 with -0.0 folded into 0.0 (so equal kinematics hash equally)."""
    return (np.round(np.asarray(x, dtype=np.float64), 9) + 0.0).tobytes()


def kinematics_hash(robot: Robot, tips: list[tuple[str, np.ndarray]], mount: np.ndarray, lower, upper) -> str:
    """A short hash of everything that determines fingertip FK and the action normalisation."""
    h = hashlib.sha256()
    for j in robot.joints:
        h.update(j.name.encode())
        h.update(j.type.encode())
        h.update(_canon(j.origin))
        h.update(_canon(j.axis))
        h.update(repr(j.mimic).encode())
    for link, point in tips:
        h.update(link.encode())
        h.update(_canon(np.asarray(point, dtype=np.float64)))
    h.update(_canon(mount))
    h.update(_canon(np.asarray(lower, dtype=np.float64)))
    h.update(_canon(np.asarray(upper, dtype=np.float64)))
    return h.hexdigest()[:16]
