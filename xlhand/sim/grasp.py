"""Grasp synthesis on closing paths: where to put the object relative to the hand so that the closing fingers meet
it with balanced contacts, found from the hand's FK alone (no hand is known by name).

Each grasping finger closes along a straight path in joint space, from the open posture (zero, clamped) to the
posture where the grasping fingertips meet (IK through xlhand's FK). Sampling those paths gives, for every finger,
the points its tip and links sweep. For a candidate object centre ``c`` (canonical hand frame) the first contact of
each finger is where one of its points enters the object's surface (a signed distance per shape); a grasp is good
when those contacts oppose each other (their outward normals sum to little), none presses on the object's top, the
fingers meet the object before the table, and the pre-grasp (each finger backed off along its path) clears the
column the object sweeps through while the hand comes down. The best centres on a grid are the candidates the
demonstrator tries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xlhand.hand.kinematics import FingertipFK
from xlhand.hand.model import Hand

PATH_SAMPLES = 32
OPEN_FRACTION = 0.5  # a zero posture spreading the grasping fingertips less than this (of the most) is not open
GRID, GRID_MIN = 21, 5  # candidate centres per axis, at most and at least
POINTS_PER_GEOM = 16  # surface points sampled on each collision geom of the hand
PAD = 0.002  # m: contact margin around the hand's surface points (human-sized hand; scales)
CLEARANCE = 0.012  # m the pre-grasp keeps from the approach column (scales)
TABLE_MARGIN = 0.0  # m of table clearance for the hand's points (scales)
APPROACH = 0.08  # m the wrist comes down from (scales)
# contacts higher than this fraction of centre-to-top above the centre are penalised: near a box's top edge they
# slip off when lifting; a tall cylinder held from above is gripped on its upper half anyway
HIGH_CONTACT = {"box": 0.3, "cylinder": 0.75, "sphere": 0.3}
SINK = 0.2  # fingers moving downwards more than this (cosine) at their contact are penalised
ALIGNED = 0.8  # fingers meeting the surface less squarely than this (cosine) are penalised
PRESS_UP = 0.0  # contacts whose normal points more upward than this (cosine) are penalised: they press down


def finger_joints(hand: Hand) -> dict[str, np.ndarray]:
    """Indices into the action vector of the actuated joints that move each finger (mimic joints -> masters)."""
    col = {n: i for i, n in enumerate(hand.joint_names)}
    out = {}
    for role, tip in hand.tips.items():
        idx = []
        for j in hand.robot.chain_to(tip.link):
            if not j.movable:
                continue
            name = j.name if j.name in col else (j.mimic[0] if j.mimic is not None else None)
            if name in col and col[name] not in idx:
                idx.append(col[name])
        out[role] = np.array(sorted(idx), dtype=np.int64)
    return out


def _geom_surface(m, g: int, n: int) -> np.ndarray:
    """About ``n`` points on the surface of compiled geom ``g``, in its body's frame."""
    import mujoco

    t, size = m.geom_type[g], m.geom_size[g]
    if t == mujoco.mjtGeom.mjGEOM_MESH:
        k = m.geom_dataid[g]
        v = m.mesh_vert[m.mesh_vertadr[k]: m.mesh_vertadr[k] + m.mesh_vertnum[k]].astype(np.float64)
        pts = _farthest(v, n)
    else:
        u = _fibonacci(n)
        if t == mujoco.mjtGeom.mjGEOM_SPHERE:
            pts = u * size[0]
        elif t == mujoco.mjtGeom.mjGEOM_BOX:
            pts = u / np.abs(u / size[:3]).max(1, keepdims=True)
        elif t == mujoco.mjtGeom.mjGEOM_CAPSULE:
            pts = u * size[0] + np.sign(u[:, 2:3]) * np.array([0.0, 0.0, size[1]])
        elif t == mujoco.mjtGeom.mjGEOM_CYLINDER:
            r = np.linalg.norm(u[:, :2], axis=1, keepdims=True)
            pts = np.c_[u[:, :2] / np.maximum(r, 1e-9) * size[0], np.sign(u[:, 2]) * size[1] * np.abs(u[:, 2])]
        else:  # planes, ellipsoids, height fields: the bounding sphere's points are close enough for planning
            pts = u * m.geom_rbound[g]
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, m.geom_quat[g])
    return pts @ R.reshape(3, 3).T + m.geom_pos[g]


def _fibonacci(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z * z)
    phi = np.pi * (1 + 5**0.5) * i
    return np.c_[r * np.cos(phi), r * np.sin(phi), z]


def _farthest(v: np.ndarray, n: int) -> np.ndarray:
    if len(v) <= n:
        return v
    idx = [int(np.argmax(np.linalg.norm(v - v.mean(0), axis=1)))]
    d = np.linalg.norm(v - v[idx[0]], axis=1)
    for _ in range(n - 1):
        idx.append(int(np.argmax(d)))
        d = np.minimum(d, np.linalg.norm(v - v[idx[-1]], axis=1))
    return v[idx]


def surface_points(hand: Hand, model, prefix: str, per_geom: int = POINTS_PER_GEOM
                   ) -> tuple[FingertipFK, np.ndarray]:
    """FK of points on the hand's collision surfaces (from the compiled MuJoCo model) and the finger each point
    belongs to (index into ``hand.fingers``; -1 for the palm and links shared by several fingers)."""
    import mujoco

    chains = [{j.child for j in hand.robot.chain_to(t.link)} for t in hand.tips.values()]
    pts, owner = [], []
    for link in hand.robot.links:
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + link)
        if b < 0:
            continue
        mine = [k for k, c in enumerate(chains) if link in c]
        who = mine[0] if len(mine) == 1 else -1
        for g in range(model.body_geomadr[b], model.body_geomadr[b] + model.body_geomnum[b]):
            if model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0:
                continue  # visual only
            for p in _geom_surface(model, g, per_geom):
                pts.append((link, p))
                owner.append(who)
    return FingertipFK(hand.robot, pts, hand.mount), np.array(owner)


@dataclass
class ClosingPaths:
    """Fingers closing from ``q_open`` to ``q_full``; ``points[a, p]`` (hand frame) at path fraction ``alphas[a]``,
    ``owner[p]`` the finger of point ``p`` (-1: the palm), ``tips[a, f]`` the fingertips."""

    q_open: np.ndarray
    q_full: np.ndarray
    alphas: np.ndarray
    points: np.ndarray
    owner: np.ndarray
    tips: np.ndarray
    grasp: list[int]  # fingers that close

    def posture(self, a: np.ndarray, joints: dict[str, np.ndarray], fingers: list[str]) -> np.ndarray:
        """Joint command with finger ``i`` at path fraction ``a[i]`` (fingers not grasping stay open)."""
        q = self.q_open.copy()
        for i in self.grasp:
            idx = joints[fingers[i]]
            q[idx] = self.q_open[idx] + a[i] * (self.q_full[idx] - self.q_open[idx])
        return q


def open_posture(hand: Hand, grasp: list[int], *, seed: int = 0) -> torch.Tensor:
    """Zero (clamped to the limits), the flat hand of most URDFs; unless the grasping fingertips are then less than
    ``OPEN_FRACTION`` as far apart as the hand can spread them (a gripper whose zero is closed): then the sampled
    posture that spreads them most."""
    lo, hi = hand.lower.double(), hand.upper.double()
    q0 = torch.clamp(torch.zeros(hand.dof, dtype=torch.float64), lo, hi)
    if len(grasp) < 2:
        return q0
    qs = torch.cat([q0[None], hand.sample(1024, generator=torch.Generator().manual_seed(seed)).double()])
    with torch.no_grad():
        tips = hand.fingertips(qs.float()).double()[:, grasp]
        spread = (tips - tips.mean(1, keepdim=True)).norm(dim=-1).mean(1)
    if spread[0] >= OPEN_FRACTION * spread.max():
        return q0
    return qs[int(torch.argmax(spread))]


def closing_paths(hand: Hand, grasp: list[int], model, prefix: str, *, seed: int = 0) -> ClosingPaths:
    """Open posture, closed posture (the grasping fingertips meet) and the points swept in between."""
    lo, hi = hand.lower.double(), hand.upper.double()
    q_open = open_posture(hand, grasp, seed=seed)
    joints = finger_joints(hand)
    moving = sorted({int(i) for f in grasp for i in joints[hand.fingers[f]]})
    idle = sorted({int(i) for f in range(len(hand.fingers)) if f not in grasp for i in joints[hand.fingers[f]]}
                  - set(moving))
    if idle:  # fingers that do not grasp are tucked in (their tips as close to the wrist as they go)
        g0 = torch.Generator().manual_seed(seed)
        qs = hand.sample(512, generator=g0).double()
        qs[:, [i for i in range(hand.dof) if i not in idle]] = q_open[[i for i in range(hand.dof) if i not in idle]]
        others = [f for f in range(len(hand.fingers)) if f not in grasp]
        with torch.no_grad():
            ext = hand.fingertips(qs.float())[:, others].norm(dim=-1).sum(1)
        q_open = qs[int(torch.argmin(ext))]
    mask = torch.zeros(hand.dof, dtype=torch.float64)
    mask[moving] = 1.0
    g = torch.Generator().manual_seed(seed)
    B = 24
    z = (torch.randn(B, hand.dof, generator=g, dtype=torch.float64) * 1.2).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.08)
    span = (hi - lo).clamp_min(1e-6)
    ref = max(float(hand.fingertips(q_open[None].float()).norm(dim=-1).max()), 0.05)

    def posture(z):
        return q_open + mask * (lo + span * torch.sigmoid(z) - q_open)

    def loss(q):
        tips = hand.fingertips(q.float()).double()[:, grasp]
        meet = (tips - tips.mean(1, keepdim=True)).pow(2).sum(-1).mean(1) / ref**2
        # a little travel is preferred over twisting: the path should be a plain flexion
        return meet + 0.002 * (((q - q_open) / span) ** 2).sum(1)

    for _ in range(200):
        lval = loss(posture(z))
        opt.zero_grad()
        lval.sum().backward()
        opt.step()
    with torch.no_grad():
        q = posture(z)
        q_full = q[int(torch.argmin(loss(q)))]
    alphas = np.linspace(0.0, 1.0, PATH_SAMPLES)
    fk, owner = surface_points(hand, model, prefix)
    qs = q_open[None] + torch.as_tensor(alphas)[:, None] * (q_full - q_open)[None]
    with torch.no_grad():
        pts = fk(qs.float()).double().numpy()
        tips = hand.fingertips(qs.float()).double().numpy()
    return ClosingPaths(q_open.numpy(), q_full.numpy(), alphas, pts, owner, tips, list(grasp))


def object_sdf(shape: str, size, d: np.ndarray, down: np.ndarray, facing: np.ndarray | None = None, *,
               normals: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Signed distance and outward normal at offsets ``d (..., 3)`` from the object's centre (hand frame);
    ``down``: the world's down in the hand frame (cylinders stand along it, boxes sit on a face); a box's second
    axis is ``facing`` (perpendicular to ``down``; default: across the finger axis). ``normals=False`` skips the
    normals (``None``): the grid search needs them at the first contacts only."""
    if shape == "sphere":
        n = np.linalg.norm(d, axis=-1)
        return n - size[0], (d / np.maximum(n, 1e-9)[..., None] if normals else None)
    axial = d @ down
    radial_v = d - axial[..., None] * down
    if shape == "cylinder":
        r = np.linalg.norm(radial_v, axis=-1)
        qa, qr = np.abs(axial) - size[1], r - size[0]
        out = np.linalg.norm(np.stack([np.maximum(qa, 0), np.maximum(qr, 0)], -1), axis=-1) + np.minimum(
            np.maximum(qa, qr), 0)
        if not normals:
            return out, None
        nr = radial_v / np.maximum(r, 1e-9)[..., None]
        n = np.where((qr >= qa)[..., None], nr, np.sign(axial)[..., None] * down)
        return out, n
    # box: half-sizes (along the finger axis z x down-perpendicular, ..., along down)
    if facing is None:
        facing = np.cross(down, [0.0, 0.0, 1.0])
    e2 = facing - (facing @ down) * down
    e2 = e2 / max(np.linalg.norm(e2), 1e-9)
    e1 = np.cross(e2, down)
    frame = np.stack([e1, e2, down])  # rows: box axes in the hand frame
    local = d @ frame.T
    h = np.asarray(size[:3])
    q = np.abs(local) - h
    outside = np.maximum(q, 0)
    dist_out = np.linalg.norm(outside, axis=-1)
    out = dist_out + np.minimum(q.max(-1), 0)
    if not normals:
        return out, None
    # the gradient: towards the nearest face inside, along the offset from the nearest surface point outside
    k = q.argmax(-1)
    n_in = np.zeros_like(local)
    np.put_along_axis(n_in, k[..., None], np.take_along_axis(np.sign(local), k[..., None], -1), -1)
    n_out = np.sign(local) * outside / np.maximum(dist_out, 1e-12)[..., None]
    n_local = np.where((dist_out > 0)[..., None], n_out, n_in)
    return out, n_local @ frame


@dataclass
class GraspCandidate:
    centre: np.ndarray  # object centre, hand frame
    a_pre: np.ndarray  # per finger: path fraction of the pre-grasp
    a_touch: np.ndarray  # per finger: path fraction of first contact (geometry)
    score: float
    normals: np.ndarray | None = None
    pitch: float = 0.0  # rad the fingers point down from horizontal (the palm faces the table at 0)
    facing: np.ndarray | None = None  # a box's face normal in the hand frame (the squeeze direction)


def squeeze_direction(paths: ClosingPaths, down: np.ndarray) -> np.ndarray:
    """Unit direction (hand frame, perpendicular to ``down``) from the other grasping tips to the thumb's (or
    between the first two grasping fingers) late in the close: the direction a box is squeezed along."""
    a = int(0.7 * (len(paths.alphas) - 1))
    g = paths.grasp
    first = paths.tips[a, g[0]]
    rest = paths.tips[a, g[1:]].mean(0) if len(g) > 1 else np.zeros(3)
    v = first - rest
    v = v - (v @ down) * down
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.cross(down, [0.0, 0.0, 1.0])


def down_in_hand(pitch: float) -> np.ndarray:
    """The world's down in the hand frame when the palm faces the table with the fingers pitched down by
    ``pitch`` rad (see :func:`xlhand.sim.world.wrist_rotation`)."""
    return np.array([np.cos(pitch), 0.0, np.sin(pitch)])


def grasp_candidates(paths: ClosingPaths, shape: str, size, rest_height: float, pitch: float, scale: float,
                     *, n: int = 6, min_touch: int | None = None) -> list[GraspCandidate]:
    """The ``n`` best object centres (hand frame) for closing ``paths`` on an object resting ``rest_height``
    above the table (its centre), the hand pitched ``pitch`` rad down. The first grasping finger (the thumb when
    it grasps) and at least ``min_touch`` grasping fingers in all (default: every one) must touch the object;
    the others may close past it (a narrow object in a wide hand)."""
    down = down_in_hand(pitch)
    pad, clear = PAD * scale, CLEARANCE * scale
    P = paths.points  # (A, N, 3)
    A = len(paths.alphas)
    extent = float(max(size))
    r_col = float(np.hypot(size[0], size[1])) if shape == "box" else float(size[0])
    top = float(size[0]) if shape == "sphere" else float(size[-1])  # centre to top, along down
    gi = paths.grasp
    facing = squeeze_direction(paths, down) if shape == "box" else None
    C = _centre_grid(paths, size, shape, extent)
    rows = []
    for chunk in np.array_split(C, max(1, len(C) // 96)):
        rows.append(_score(paths, chunk, shape, size, rest_height, down, facing, pad, clear, r_col, top,
                           len(gi) if min_touch is None else min(min_touch, len(gi))))
    first = np.concatenate([r[0] for r in rows])
    start = np.concatenate([r[6] for r in rows])
    normals = np.concatenate([r[1] for r in rows])
    heights = np.concatenate([r[2] for r in rows])
    sinks = np.concatenate([r[3] for r in rows])
    aligned = np.concatenate([r[4] for r in rows])
    ok = np.concatenate([r[5] for r in rows])
    touching = np.maximum((np.abs(normals).sum(-1) > 0).sum(1), 1)
    balance = np.linalg.norm(normals.sum(1), axis=-1) / touching
    up = -(normals @ down)  # > 0: contact on the top, pressing the object down
    press = np.clip(up - PRESS_UP, 0, None).sum(1)
    high = np.clip(heights - HIGH_CONTACT[shape], 0, None).sum(1)
    # a finger still moving down at its contact drags the object into the table with the squeeze
    sink = np.clip(sinks - SINK, 0, None).sum(1)
    # a finger sliding along the surface pushes the object sideways (and down) instead of gripping it
    glance = np.clip(ALIGNED - aligned, 0, None).sum(1)
    missing = len(gi) - (np.abs(normals).sum(-1) > 0).sum(1)  # fingers that pass the object: a weaker grasp
    score = balance + 2.0 * press + 3.0 * high + 3.0 * sink + 3.0 * glance + 0.5 * missing
    out: list[GraspCandidate] = []
    for ci in np.argsort(np.where(ok, score, np.inf))[:n]:
        if not ok[ci]:
            break
        c = C[ci]
        # pre-grasp: each finger as far along its path as keeps it out of the column the object sweeps (hand
        # frame) while the hand comes down: centre + t * down, t >= 0
        a_pre = np.zeros(paths.tips.shape[1])
        a_touch = np.zeros_like(a_pre)
        for k, f in enumerate(gi):
            bad = _in_column(P[:, paths.owner == f] - c, down, top + pad, r_col + pad + clear)
            j, s0 = int(first[ci, k]), int(start[ci, k])
            free = np.flatnonzero(np.cumsum(bad[s0:j]) == 0)
            a_pre[f] = paths.alphas[s0 + free[-1] if len(free) else s0]
            a_touch[f] = paths.alphas[min(j, A - 1)]
        out.append(GraspCandidate(c, a_pre, a_touch, float(score[ci]), normals[ci], pitch, facing))
    return out


def _in_column(d: np.ndarray, down: np.ndarray, above: float, radius: float) -> np.ndarray:
    """Whether any of the points ``d (..., N, 3)`` (offsets from the object's centre) lies in the column the object
    sweeps while the hand comes down onto it: below ``above`` over the centre and within ``radius`` of its axis."""
    along = d @ down
    radial = np.linalg.norm(d - along[..., None] * down, axis=-1)
    return ((along > -above) & (radial < radius)).any(-1)


def _centre_grid(paths: ClosingPaths, size, shape: str, extent: float) -> np.ndarray:
    """Candidate object centres: a grid over the region where every grasping fingertip's sweep comes within the
    object's reach (the whole swept region when the sweeps do not overlap), spaced at half the object's smallest
    half-size so that a small object between long fingers is not stepped over."""
    sweeps = paths.tips[:, paths.grasp]  # (A, G, 3)
    lo_f, hi_f = sweeps.min(0) - extent, sweeps.max(0) + extent  # (G, 3) per finger
    lo, hi = lo_f.max(0), hi_f.min(0)
    if np.any(lo >= hi):
        lo, hi = lo_f.min(0), hi_f.max(0)
    step = 0.5 * float(min(size[:1] if shape == "sphere" else size[:2] if shape == "cylinder" else size[:3]))
    n = np.clip(np.ceil((hi - lo) / max(step, 1e-4)).astype(int) + 1, GRID_MIN, GRID)
    axes = [np.linspace(lo[k], hi[k], n[k]) for k in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def _score(paths: ClosingPaths, C, shape, size, rest_height, down, facing, pad, clear, r_col, top, min_touch):
    """For centres ``C``: each grasping finger's first contact (path index), the contact normals, feasibility,
    and the path index each finger may start closing from (after the last point where it would be in the
    table: a finger may not open fully beside a small object on the table, but closes from where it can)."""
    A = len(paths.alphas)
    gi = paths.grasp
    mine = np.isin(paths.owner, gi)  # distances are needed for the grasping fingers' points only
    P, owner = paths.points[:, mine], paths.owner[mine]
    d = P[None] - C[:, None, None]  # (C, A, N, 3)
    sdf, _ = object_sdf(shape, size, d, down, facing, normals=False)
    in_table = (d @ down) > rest_height - pad - TABLE_MARGIN
    first = np.full((len(C), len(gi)), A, dtype=np.int64)
    start = np.zeros_like(first)
    steps = np.arange(A)
    normals = np.zeros((len(C), len(gi), 3))
    heights = np.zeros((len(C), len(gi)))  # contact height above the centre, as a fraction of centre-to-top
    sinks = np.zeros((len(C), len(gi)))  # how much the finger moves downwards at its contact (cosine)
    aligned = np.zeros((len(C), len(gi)))  # how squarely it moves into the surface there (cosine)
    rows = np.arange(len(C))
    for k, f in enumerate(gi):
        sel = owner == f
        h = (sdf[:, :, sel] < pad).any(-1)  # (C, A)
        first[:, k] = np.where(h.any(1), h.argmax(1), A)
        t = in_table[:, :, sel].any(-1) & (steps[None] < first[:, k, None])  # in the table before the contact
        start[:, k] = np.where(t.any(1), A - t[:, ::-1].argmax(1), 0)
        a_idx = np.minimum(first[:, k], A - 1)
        s_at = sdf[rows, a_idx][:, sel]  # (C, Nf) at the first contact: the normal of its deepest point
        deepest = s_at.argmin(1)
        d_at = d[rows, a_idx][:, sel][rows, deepest]
        normals[:, k] = object_sdf(shape, size, d_at, down, facing)[1]
        heights[:, k] = -(d_at @ down) / top
        nxt = np.minimum(a_idx + 1, A - 1)
        prv = np.maximum(nxt - 1, 0)
        v = (P[nxt][:, sel] - P[prv][:, sel])[rows, deepest]  # the contact point's motion along the path
        v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
        sinks[:, k] = v @ down
        aligned[:, k] = -(v * normals[:, k]).sum(-1)
    good = (first < A) & (first > start)
    late = np.flatnonzero((start > 0).any(1))  # a finger starts part-closed: its start must clear the column
    if len(late):
        for k, f in enumerate(gi):
            sel = owner == f
            rows_k = late[start[late, k] > 0]
            ds = d[rows_k, np.minimum(start[rows_k, k], A - 1)][:, sel]  # (R, Nf, 3) at the start posture
            good[rows_k, k] &= ~_in_column(ds, down, top + pad, r_col + pad + clear)
    clean = good | (first == A)  # a finger that misses the object altogether may close past it
    ok = clean.all(1) & good[:, 0] & (good.sum(1) >= min_touch)
    missed = first == A
    normals[missed] = 0.0
    heights[missed] = 0.0
    sinks[missed] = 0.0
    aligned[missed] = 1.0
    # the palm and the fingers held open: out of the table, and out of the column the object comes down through
    still = ~mine
    if still.any():
        ds = paths.points[0, still][None] - C[:, None]
        ok &= ~((ds @ down) > rest_height - pad).any(1)
        ok &= ~_in_column(ds, down, top + pad, r_col + pad)
    return first, normals, heights, sinks, aligned, ok, start
