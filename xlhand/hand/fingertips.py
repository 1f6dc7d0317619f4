"""Find the fingers of a bare URDF: their distal links, a fingertip point on each, and their roles.

A *finger* is a chain of movable joints ending in a leaf. Leaves reached without any movable joint (``ee_link``,
``imu``, tcp frames, a ``wrist`` marker) are not fingers. Leaves that branch off a finger before its last movable
joint (tactile pads on a proximal phalanx) are not fingertips either, and of several leaves after the same last
joint the most distal one is the tip. When that leaf is the moving phalanx itself (no tip frame), the fingertip
point is put at the far end of the link's visual geometry.

Roles are assigned from the geometry at the zero pose (see :func:`assign_roles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlhand.hand.spec import ROLES
from xlhand.hand.urdf import Robot


@dataclass(frozen=True)
class Finger:
    """A detected finger: its tip link and point, and the joints that belong to it alone."""

    tip_link: str
    offset: np.ndarray  # point in the tip link's frame, metres
    joints: tuple[str, ...]  # movable joints of this finger not shared with other fingers, root first
    all_joints: tuple[str, ...]  # every movable joint from the root to the tip


def find_fingers(robot: Robot) -> list[Finger]:
    """Detect finger chains and their fingertips, in URDF link order."""
    zero = robot.link_transforms()
    candidates = []
    for leaf in robot.leaves:
        movable = [j for j in robot.chain_to(leaf) if j.movable]
        if movable:
            candidates.append((leaf, movable))
    last_of = {leaf: movable[-1].name for leaf, movable in candidates}
    # a leaf whose last movable joint is a strict ancestor of another leaf's last joint branches off mid-finger
    ancestors = set()
    for _, movable in candidates:
        ancestors.update(j.name for j in movable[:-1])
    groups: dict[str, list[str]] = {}
    for leaf, _ in candidates:
        if last_of[leaf] not in ancestors:
            groups.setdefault(last_of[leaf], []).append(leaf)

    fingers = []
    for joint_name, leaves in groups.items():
        joint = robot.joint_by_name[joint_name]
        origin = zero[joint.child][:3, 3]
        points = {leaf: _tip_point(robot, leaf) for leaf in leaves}
        reach = {leaf: np.linalg.norm((zero[leaf] @ np.append(points[leaf], 1))[:3] - origin) for leaf in leaves}
        far = max(reach.values())
        # leaves level with the farthest (a tip frame and a back pad at the same point): prefer a "tip" name
        level = [leaf for leaf in leaves if reach[leaf] >= far - 0.001]
        tip = next((leaf for leaf in level if "tip" in leaf.lower()), level[0])
        fingers.append((tip, points[tip], None))
    order = {name: i for i, name in enumerate(robot.links)}
    fingers.sort(key=lambda f: order[f[0]])
    return fingers_from_tips(robot, [(tip, point) for tip, point, _ in fingers])


def fingers_from_tips(robot: Robot, tips: list[tuple[str, np.ndarray]]) -> list[Finger]:
    """Fingers for given (tip link, point) pairs; joints shared by several fingers (a palm joint) are no
    finger's own."""
    chains = [tuple(j.name for j in robot.chain_to(link) if j.movable) for link, _ in tips]
    counts: dict[str, int] = {}
    for chain in chains:
        for name in chain:
            counts[name] = counts.get(name, 0) + 1
    return [
        Finger(link, np.asarray(point, dtype=np.float64), tuple(n for n in chain if counts[n] == 1), chain)
        for (link, point), chain in zip(tips, chains)
    ]


def _tip_point(robot: Robot, leaf: str) -> np.ndarray:
    """The fingertip point in ``leaf``'s frame: its origin if it is a tip frame, else the far end of its geometry."""
    parent = robot.parent_joint.get(leaf)
    if parent is None or not parent.movable:
        return np.zeros(3)
    pts = _visual_points(robot, leaf)
    if pts is None or len(pts) == 0:
        return np.zeros(3)
    far = pts[np.argmax(np.linalg.norm(pts, axis=1))]
    u = far / max(np.linalg.norm(far), 1e-12)
    proj = pts @ u
    cap = pts[proj >= proj.max() - 0.003]  # the 3 mm cap at the far end
    return cap.mean(axis=0)


def _visual_points(robot: Robot, link: str) -> np.ndarray | None:
    """Vertices (or primitive corners) of a link's visuals in the link frame, metres."""
    import trimesh

    chunks = []
    for vis in robot.visuals:
        if vis.link != link:
            continue
        if vis.kind == "mesh":
            if vis.mesh is None or not vis.mesh.exists():
                continue
            try:
                loaded = trimesh.load(str(vis.mesh), force="mesh", process=False)
            except Exception:
                continue
            pts = np.asarray(loaded.vertices, dtype=np.float64) * np.asarray(vis.scale)
        elif vis.kind == "box":
            half = np.asarray(vis.size) / 2
            pts = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
        elif vis.kind == "cylinder":
            r, length = vis.size
            ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            ring = np.stack([r * np.cos(ang), r * np.sin(ang), np.zeros_like(ang)], axis=1)
            pts = np.concatenate([ring + [0, 0, length / 2], ring - [0, 0, length / 2]])
        else:
            r = vis.size[0]
            pts = np.concatenate([np.eye(3) * r, -np.eye(3) * r])
        chunks.append(pts @ vis.origin[:3, :3].T + vis.origin[:3, 3])
    return np.concatenate(chunks) if chunks else None


# ---------------------------------------------------------------------------------------------------------------
# Roles


def finger_geometry(robot: Robot, fingers: list[Finger]) -> dict[str, np.ndarray]:
    """Zero-pose geometry in the root frame: ``base (F,3)`` (first own joint), ``tip (F,3)``, ``axis (F,3)``
    (the most distal joint's axis, signed so that moving toward the larger limit is positive)."""
    zero = robot.link_transforms()
    base, tip, axis = [], [], []
    for f in fingers:
        own = f.joints or f.all_joints
        first = robot.joint_by_name[own[0]]
        base.append((zero[first.parent] @ first.origin)[:3, 3])
        tip.append((zero[f.tip_link] @ np.append(f.offset, 1.0))[:3])
        last = robot.joint_by_name[f.all_joints[-1]]
        R = (zero[last.parent] @ last.origin)[:3, :3]
        sign = 1.0 if abs(last.upper) >= abs(last.lower) else -1.0
        axis.append(sign * (R @ last.axis))
    return {"base": np.array(base), "tip": np.array(tip), "axis": np.array(axis)}


def find_thumb(robot: Robot, fingers: list[Finger]) -> int | None:
    """Index of the finger that opposes the others, or None when no finger clearly does.

    - Four or more fingers: the others' bases lie on a row (the knuckles); the thumb's base is off that row.
      For each finger, its distance from the line fitted through the other bases, over that fit's residual;
      the thumb's score is clearly the largest.
    - Three fingers: a finger built differently from two identical others (a different number of own joints:
      Dex3's thumb, Barrett's fixed finger), else a base clearly apart from the other two.
    - Two fingers (a gripper): the first in file order is the thumb. One finger: no thumb.
    """
    n = len(fingers)
    if n < 2:
        return None
    if n == 2:
        return 0
    base = finger_geometry(robot, fingers)["base"]
    if n == 3:
        counts = [len(f.joints) for f in fingers]
        odd = [i for i in range(3) if counts.count(counts[i]) == 1]
        if len(odd) == 1:
            return odd[0]
        dist = np.linalg.norm(base[:, None] - base[None], axis=-1)
        apart = np.array([dist[i].sum() / 2 / max(dist[np.ix_(o, o)][0, 1], 1e-9)
                          for i, o in ((i, [k for k in range(3) if k != i]) for i in range(3))])
        order = np.argsort(apart)[::-1]
        return int(order[0]) if apart[order[0]] > 1.15 * apart[order[1]] else None
    scores = []
    for i in range(n):
        others = base[[k for k in range(n) if k != i]]
        centre = others.mean(axis=0)
        direction = np.linalg.svd(others - centre)[2][0]
        def off_line(p):
            d = p - centre
            return np.linalg.norm(d - (d @ direction) * direction)
        residual = np.sqrt(np.mean([off_line(p) ** 2 for p in others]))
        scores.append(off_line(base[i]) / (residual + 1e-3))
    scores = np.array(scores)
    order = np.argsort(scores)[::-1]
    return int(order[0]) if scores[order[0]] > 2.0 * scores[order[1]] else None


def assign_roles(robot: Robot, fingers: list[Finger], thumb: int | None, y_axis: np.ndarray) -> dict[str, Finger]:
    """Map roles to fingers, ordered thumb, index, middle, ring, little.

    ``y_axis`` is the canonical +y (toward the thumb side of a right hand) in the root frame: the non-thumb
    fingers are ordered from +y to -y, so the index is the one on the thumb's side.
    """
    base = finger_geometry(robot, fingers)["base"] if fingers else np.zeros((0, 3))
    rest = [i for i in range(len(fingers)) if i != thumb]
    rest.sort(key=lambda i: -float(base[i] @ y_axis))
    roles = {}
    if thumb is not None:
        roles["thumb"] = fingers[thumb]
    for role, i in zip(ROLES[1:], rest):
        roles[role] = fingers[i]
    return roles
