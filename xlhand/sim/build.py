"""Any :class:`~xlhand.hand.model.Hand` into a MuJoCo model (``mujoco.MjSpec``), the same path for every hand.

- **Bodies and joints** from xlhand's validated kinematic tree; the URDF root sits on a ``wrist`` mocap body at the
  hand's canonical mount, so a task moves the hand by its canonical frame (fingers +z, palm +x, thumb +y).
- **Limits** are the hand's (``hand.toml`` overrides included); **mimic** joints follow their master through a joint
  equality constraint (``q = offset + multiplier * q_master``).
- **Collision geometry**: the URDF's ``<collision>`` elements, else its ``<visual>`` ones; primitives stay
  primitives, meshes become their convex hull (computed here with trimesh, so every mesh format trimesh reads works).
  A collision mesh that is missing or broken falls back to the link's visual geometry (a visual mesh as its
  bounding box), and failing that to a capsule along the link: the hand still loads, with a :class:`SimWarning`.
- **Actuators**: one position actuator per actuated joint. Gains scale with the hand (``docs/sim.md``): a joint's
  force limit is ``FINGER_FORCE`` newtons at its farthest fingertip (scaled by the hand's length over a human
  hand's), reached at ``FULL_FORCE_ERROR`` rad of tracking error; reflected rotor inertia (armature) sets the
  servo's bandwidth to ``SERVO_BANDWIDTH`` rad/s, critically damped. Gravity on the hand's links is compensated
  through the actuators (like a geared servo, it counts against the force limit).
- **Contacts**: the hand touches the world (table, objects), not itself (URDF collision shapes of neighbouring
  links overlap at rest on most real hands; ``xlhand sim check`` reports such overlaps).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xlhand.errors import XlhandError
from xlhand.hand.kinematics import actuated_joints

if TYPE_CHECKING:
    import mujoco

    from xlhand.hand.model import Hand
    from xlhand.hand.urdf import Visual

HUMAN_HAND_LENGTH = 0.19  # m, wrist to middle fingertip of an adult hand: the scale the defaults are written for
FINGER_FORCE = 15.0  # N at the fingertip of a human-sized hand at the force limit
FULL_FORCE_ERROR = 0.25  # rad (or FULL_FORCE_ERROR * 0.04 m for a prismatic joint) of error to reach the limit
SERVO_BANDWIDTH = 40.0  # rad/s: armature = kp / bandwidth**2, far below the physics rate (1 / TIMESTEP)
TIMESTEP = 0.002  # s
WELD_TIMECONST = 2 * TIMESTEP  # s: the wrist weld, as stiff as the time step allows
DENSITY = 1100.0  # kg/m^3 for hand links (plastic and aluminium shells), inertia from the collision geometry
HAND_FRICTION = (1.2, 0.02, 0.001)  # sliding, torsional, rolling: rubber-padded fingers
CONTYPE_HAND, CONAFFINITY_HAND = 1, 2  # hand geoms collide with the world (contype 2), never with each other
CONTYPE_WORLD, CONAFFINITY_WORLD = 2, 3


class SimWarning(UserWarning):
    """Something about a hand's geometry that the physics model worked around."""


@dataclass
class HandModelInfo:
    """What :func:`add_hand` put into a spec: names to find things again after compiling."""

    prefix: str
    joints: list[str]  # actuated joints in Hand.joint_names order (MuJoCo names)
    actuators: list[str]
    mimic: list[tuple[str, str, float, float]]  # (mimic joint, master joint, multiplier, offset), MuJoCo names
    bodies: list[str]
    kp: np.ndarray
    force_limit: np.ndarray
    armature: np.ndarray
    length: float  # m, wrist to farthest fingertip at rest
    notes: list[str] = field(default_factory=list)


def _quat(rot: np.ndarray) -> list[float]:
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(rot, dtype=np.float64).reshape(9))
    return q.tolist()


def _set_pose(el, T: np.ndarray) -> None:
    el.pos = T[:3, 3].tolist()
    el.quat = _quat(T[:3, :3])


def hand_length(hand: Hand) -> float:
    """Distance (m) from the wrist to the farthest fingertip at the zero posture clamped into the limits."""
    import torch

    q = torch.clamp(torch.zeros(1, hand.dof), hand.lower, hand.upper)
    return float(hand.fingertips(q)[0].norm(dim=-1).max())


def hull_vertices(path, scale) -> np.ndarray:
    """The convex hull's vertices of a mesh file (scaled); raises ValueError when it cannot give a solid hull."""
    import trimesh

    mesh = trimesh.load(str(path), force="mesh", process=False)
    verts = np.asarray(mesh.vertices, dtype=np.float64) * np.asarray(scale, dtype=np.float64)
    if verts.shape[0] < 4 or not np.all(np.isfinite(verts)):
        raise ValueError("fewer than 4 finite vertices")
    hull = trimesh.convex.convex_hull(verts)
    extent = np.ptp(hull.vertices, axis=0)
    if hull.volume <= 1e-12 or extent.min() < 1e-5:
        raise ValueError("the mesh is flat (no volume)")
    return np.asarray(hull.vertices, dtype=np.float64)


def _mesh_box(path, scale) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-sizes of a mesh file's axis-aligned bounds (scaled)."""
    import trimesh

    mesh = trimesh.load(str(path), force="mesh", process=False)
    v = np.asarray(mesh.vertices, dtype=np.float64) * np.asarray(scale, dtype=np.float64)
    if v.shape[0] == 0 or not np.all(np.isfinite(v)):
        raise ValueError("no finite vertices")
    lo, hi = v.min(0), v.max(0)
    return (lo + hi) / 2, np.maximum((hi - lo) / 2, 2e-3)


class _GeomAdder:
    def __init__(self, spec: mujoco.MjSpec, prefix: str, notes: list[str]):
        self.spec, self.prefix, self.notes = spec, prefix, notes
        self.meshes = 0

    def _common(self, geom, rgba) -> None:
        geom.contype, geom.conaffinity = CONTYPE_HAND, CONAFFINITY_HAND
        geom.condim = 4
        geom.friction = list(HAND_FRICTION)
        geom.density = DENSITY
        geom.group = 2
        geom.rgba = list(rgba) if rgba is not None else [0.75, 0.75, 0.78, 1.0]

    def primitive(self, body, vis: Visual) -> None:
        import mujoco

        g = body.add_geom()
        _set_pose(g, vis.origin)
        if vis.kind == "box":
            g.type = mujoco.mjtGeom.mjGEOM_BOX
            g.size = [max(s / 2, 1e-4) for s in vis.size]
        elif vis.kind == "cylinder":
            g.type = mujoco.mjtGeom.mjGEOM_CYLINDER
            g.size = [max(vis.size[0], 1e-4), max(vis.size[1] / 2, 1e-4), 0]
        else:
            g.type = mujoco.mjtGeom.mjGEOM_SPHERE
            g.size = [max(vis.size[0], 1e-4), 0, 0]
        self._common(g, vis.rgba)

    def hull(self, body, vis: Visual, verts: np.ndarray) -> None:
        import mujoco

        name = f"{self.prefix}mesh{self.meshes}"
        self.meshes += 1
        mesh = self.spec.add_mesh()
        mesh.name = name
        mesh.uservert = verts.reshape(-1).tolist()
        g = body.add_geom()
        _set_pose(g, vis.origin)
        g.type = mujoco.mjtGeom.mjGEOM_MESH
        g.meshname = name
        self._common(g, vis.rgba)

    def box(self, body, T: np.ndarray, centre: np.ndarray, half: np.ndarray, rgba) -> None:
        import mujoco

        g = body.add_geom()
        g.type = mujoco.mjtGeom.mjGEOM_BOX
        g.pos = (T[:3, :3] @ centre + T[:3, 3]).tolist()
        g.quat = _quat(T[:3, :3])
        g.size = half.tolist()
        self._common(g, rgba)

    def capsule(self, body, a: np.ndarray, b: np.ndarray, radius: float) -> None:
        import mujoco

        g = body.add_geom()
        if np.linalg.norm(b - a) < 1e-4:
            g.type = mujoco.mjtGeom.mjGEOM_SPHERE
            g.size = [radius, 0, 0]
            g.pos = a.tolist()
        else:
            g.type = mujoco.mjtGeom.mjGEOM_CAPSULE
            g.fromto = [*a.tolist(), *b.tolist()]
            g.size = [radius, 0, 0]
        self._common(g, None)


def _link_geometry(adder: _GeomAdder, body, link: str, hand: Hand, by_link: dict, vis_by_link: dict,
                   length: float) -> None:
    """Collision geometry of one link, with the fallbacks of the module docstring."""
    robot = hand.robot
    items = by_link.get(link, [])
    broken = []
    for vis in items:
        if vis.kind != "mesh":
            adder.primitive(body, vis)
            continue
        try:
            if vis.mesh is None or not vis.mesh.exists():
                raise ValueError("file not found")
            adder.hull(body, vis, hull_vertices(vis.mesh, vis.scale))
        except Exception as exc:  # trimesh raises many types on unreadable files
            broken.append(f"{vis.mesh.name if vis.mesh else '?'} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    if not broken:
        return
    # fall back: the link's visual geometry, then a capsule along the link
    done = False
    for vis in vis_by_link.get(link, []) if by_link is not vis_by_link else []:
        if vis.kind != "mesh":
            adder.primitive(body, vis)
            done = True
            continue
        try:
            centre, half = _mesh_box(vis.mesh, vis.scale)
            adder.box(body, vis.origin, centre, half, vis.rgba)
            done = True
        except Exception:  # the visual mesh is unreadable too
            pass
    how = "its visual geometry" if done else "a capsule along the link"
    if not done:
        ends = [j.origin[:3, 3] for j in robot.child_joints.get(link, [])]
        ends += [np.asarray(t.offset) for t in hand.tips.values() if t.link == link]
        radius = max(0.004, 0.05 * length)
        for end in ends or [np.zeros(3)]:
            adder.capsule(body, np.zeros(3), np.asarray(end, dtype=np.float64), radius)
    note = f"link {link!r}: collision mesh {', '.join(broken)} unusable; using {how}"
    adder.notes.append(note)
    warnings.warn(f"{hand.urdf_path}: {note}", SimWarning, stacklevel=4)


def _tip_reach(hand: Hand) -> dict[str, float]:
    """For every movable joint, the farthest distance (m, at rest) from its axis to a fingertip it moves."""
    robot = hand.robot
    T = robot.link_transforms()
    reach: dict[str, float] = {}
    for tip in hand.tips.values():
        p = T[tip.link] @ np.r_[np.asarray(tip.offset, dtype=np.float64), 1.0]
        for j in robot.chain_to(tip.link):
            if not j.movable:
                continue
            Tj = T[j.parent] @ j.origin
            axis = Tj[:3, :3] @ j.axis
            v = p[:3] - Tj[:3, 3]
            d = float(np.linalg.norm(v - axis * (v @ axis))) if j.type == "revolute" else 1.0
            reach[j.name] = max(reach.get(j.name, 0.0), d)
    return reach


def add_hand(spec: mujoco.MjSpec, hand: Hand, *, prefix: str = "hand/", wrist_pos=(0.0, 0.0, 0.5)) -> HandModelInfo:
    """Add ``hand`` to ``spec`` on a mocap body ``{prefix}wrist``; returns the names and gains it used."""
    import mujoco

    robot = hand.robot
    notes: list[str] = []
    length = hand_length(hand)
    scale = max(length, 0.02) / HUMAN_HAND_LENGTH
    collisions = robot.collisions or robot.visuals
    by_link: dict[str, list] = {}
    for vis in collisions:
        by_link.setdefault(vis.link, []).append(vis)
    vis_by_link: dict[str, list] = {}
    for vis in robot.visuals:
        vis_by_link.setdefault(vis.link, []).append(vis)
    if not robot.collisions:
        notes.append("no <collision> elements: collision geometry from the visual elements")
    if not collisions:
        notes.append("no geometry at all: capsules along the links")
    adder = _GeomAdder(spec, prefix, notes)

    wrist = spec.worldbody.add_body()
    wrist.name = f"{prefix}~wrist"  # "~" keeps it apart from any URDF link name
    wrist.mocap = True
    wrist.pos = list(wrist_pos)
    # the hand is a free body welded to the mocap wrist, not its child: a mocap body is teleported (it has no
    # velocity), so fingers fixed to it would slide over a grasped object instead of dragging it up by friction
    root = spec.worldbody.add_body()
    root.name = f"{prefix}{robot.root}"
    mount = np.asarray(hand.mount, dtype=np.float64)
    root.pos = (np.asarray(wrist_pos, dtype=np.float64) + mount[:3, 3]).tolist()
    root.quat = _quat(mount[:3, :3])
    root.add_freejoint().name = f"{prefix}~free"
    root.gravcomp = 1.0
    weld = spec.add_equality()
    weld.name = f"{prefix}~weld"
    weld.type = mujoco.mjtEq.mjEQ_WELD
    weld.objtype = mujoco.mjtObj.mjOBJ_BODY
    weld.name1, weld.name2 = wrist.name, root.name
    weld.solref = [WELD_TIMECONST, 1.0]
    data = np.zeros(len(weld.data))  # anchor 0, relative pose from the reference configuration (zero quat)
    data[10] = 1.0  # torquescale
    weld.data = data.tolist()
    bodies = [root.name]
    _link_geometry(adder, root, robot.root, hand, by_link, vis_by_link if robot.collisions else by_link, length)

    actuated = {j.name for j in actuated_joints(robot)}
    index = {n: i for i, n in enumerate(hand.joint_names)}
    lower, upper = hand.lower.double().numpy(), hand.upper.double().numpy()
    reach = _tip_reach(hand)
    kp = np.zeros(hand.dof)
    flim = np.zeros(hand.dof)
    arm = np.zeros(hand.dof)
    mimic: list[tuple[str, str, float, float]] = []
    stack = [(robot.root, root)]
    while stack:
        link, body = stack.pop()
        for j in robot.child_joints[link]:
            child = body.add_body()
            child.name = f"{prefix}{j.child}"
            _set_pose(child, j.origin)
            child.gravcomp = 1.0
            bodies.append(child.name)
            if j.movable:
                mj = child.add_joint()
                mj.name = f"{prefix}{j.name}"
                mj.type = mujoco.mjtJoint.mjJNT_HINGE if j.type == "revolute" else mujoco.mjtJoint.mjJNT_SLIDE
                mj.axis = j.axis.tolist()
                mj.actgravcomp = True
                if j.name in actuated:
                    i = index[j.name]
                    mj.limited = mujoco.mjtLimited.mjLIMITED_TRUE
                    mj.range = [float(lower[i]), float(upper[i])]
                    if j.type == "revolute":
                        tau = FINGER_FORCE * scale * max(reach.get(j.name, 0.0), 0.2 * length, 0.005)
                        err = FULL_FORCE_ERROR
                    else:
                        tau = FINGER_FORCE * scale * 2  # a gripper slide pushes with the whole jaw
                        err = FULL_FORCE_ERROR * 0.04 * scale
                    kp[i] = tau / err
                    flim[i] = tau
                    arm[i] = kp[i] / SERVO_BANDWIDTH**2
                    mj.armature = float(arm[i])
                else:
                    name, mult, off = j.mimic
                    mj.limited = mujoco.mjtLimited.mjLIMITED_FALSE
                    master = robot.joint_by_name[name]
                    mj.armature = 1e-5 * scale**5 if master.type == "revolute" else 1e-3 * scale**3
                    mimic.append((mj.name, f"{prefix}{name}", mult, off))
            _link_geometry(adder, child, j.child, hand, by_link, vis_by_link if robot.collisions else by_link, length)
            stack.append((j.child, child))

    for mimic_joint, master, mult, off in mimic:
        eq = spec.add_equality()
        eq.type = mujoco.mjtEq.mjEQ_JOINT
        eq.name1, eq.name2 = mimic_joint, master
        eq.data = [off, mult, 0, 0, 0] + [0.0] * (len(eq.data) - 5)
        eq.solref = [2 * TIMESTEP, 1.0]

    names, acts = [], []
    for i, jname in enumerate(hand.joint_names):
        a = spec.add_actuator()
        a.name = f"{prefix}act/{jname}"
        a.target = f"{prefix}{jname}"
        a.trntype = mujoco.mjtTrn.mjTRN_JOINT
        a.set_to_position(kp=float(kp[i]), kv=float(2 * math.sqrt(kp[i] * arm[i])))
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-float(flim[i]), float(flim[i])]
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.ctrlrange = [float(lower[i]), float(upper[i])]
        names.append(f"{prefix}{jname}")
        acts.append(a.name)
    return HandModelInfo(prefix=prefix, joints=names, actuators=acts, mimic=mimic, bodies=bodies, kp=kp,
                         force_limit=flim, armature=arm, length=length, notes=notes)


def configure(spec: mujoco.MjSpec) -> None:
    """Physics options shared by every xlhand world (documented in ``docs/sim.md``)."""
    import mujoco

    spec.compiler.degree = False  # ranges in radians, as xlhand stores them
    spec.option.timestep = TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
    spec.compiler.boundmass = 1e-4
    spec.compiler.boundinertia = 1e-9


def compile_spec(spec: mujoco.MjSpec, hand: Hand) -> mujoco.MjModel:
    """Compile, turning MuJoCo's errors into one line naming the hand's URDF."""
    try:
        return spec.compile()
    except Exception as exc:  # mujoco raises ValueError with a multi-line message
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XlhandError(f"MuJoCo could not build the hand: {msg}", hand.urdf_path) from None
