"""A hand in a scene: a table, one object, a camera; 20 Hz commands interpolated at the physics rate.

The world frame has z up and the table top at z = 0. The object is a free body whose shape (sphere, box or
cylinder), size, mass and friction are set per episode on the compiled model (no recompiling between episodes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xlhand.sim.build import CONAFFINITY_WORLD, CONTYPE_WORLD, TIMESTEP, add_hand, compile_spec, configure

if TYPE_CHECKING:
    from xlhand.hand.model import Hand

CONTROL_HZ = 20  # the policy rate: one command per 50 ms
SHAPES = ("sphere", "box", "cylinder")


@dataclass(frozen=True)
class ObjectState:
    """One object for an episode. ``size``: sphere (r,), box half-sizes (x, y, z), cylinder (r, half-height)."""

    shape: str
    size: tuple[float, ...]
    mass: float
    friction: float
    xy: tuple[float, float]
    yaw: float = 0.0

    @property
    def rest_z(self) -> float:
        return self.size[0] if self.shape == "sphere" else self.size[-1]


def _inertia(shape: str, size, mass: float) -> np.ndarray:
    if shape == "sphere":
        return np.full(3, 0.4 * mass * size[0] ** 2)
    if shape == "box":
        x, y, z = (2 * s for s in size)
        return mass / 12 * np.array([y * y + z * z, x * x + z * z, x * x + y * y])
    r, h = size[0], 2 * size[1]
    side = mass * (3 * r * r + h * h) / 12
    return np.array([side, side, 0.5 * mass * r * r])


def wrist_rotation(yaw: float, palm: str = "down", pitch: float = 0.0) -> np.ndarray:
    """Hand-frame -> world rotation: palm normal (+x) down (or ``"side"``: horizontal), fingers (+z) along ``yaw``;
    ``pitch`` tilts the fingers down about the thumb axis (+y), rad."""
    f = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    x = np.array([0.0, 0.0, -1.0]) if palm == "down" else np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    y = np.cross(f, x)
    R = np.stack([x, y, f], axis=1)
    if pitch:
        c, s = math.cos(pitch), math.sin(pitch)
        R = R @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return R


class World:
    """One hand, a table and an object slot, compiled once; :meth:`reset` starts an episode."""

    def __init__(self, hand: Hand, *, camera_size: tuple[int, int] = (128, 128), antialias: bool = False):
        import mujoco

        self.hand = hand
        spec = mujoco.MjSpec()
        spec.modelname = f"xlhand_{hand.name}"
        configure(spec)
        spec.visual.global_.offwidth = camera_size[1]
        spec.visual.global_.offheight = camera_size[0]
        # 4x multisampling costs 6x the frame time on Mesa's software EGL; policy images go without it
        spec.visual.quality.offsamples = 4 if antialias else 0
        self.info = add_hand(spec, hand)
        w = spec.worldbody
        table = w.add_geom()
        table.name = "table"
        table.type = mujoco.mjtGeom.mjGEOM_BOX
        table.size = [0.5, 0.5, 0.02]
        table.pos = [0, 0, -0.02]
        table.rgba = [0.55, 0.45, 0.35, 1]
        table.contype, table.conaffinity = CONTYPE_WORLD, CONAFFINITY_WORLD
        table.friction = [0.6, 0.01, 0.001]
        light = w.add_light()
        light.pos = [0.3, -0.4, 1.2]
        light.dir = [-0.25, 0.35, -1]
        light.castshadow = False
        cam = w.add_camera()
        cam.name = "front"
        L = max(self.info.length, 0.05)
        cam.pos = [0.4 * L, -2.8 * L, 1.7 * L]
        cam.quat = _camera_quat(np.array(cam.pos), np.array([0.0, 0.0, 0.75 * L]))
        cam.fovy = 45
        body = w.add_body()
        body.name = "object"
        body.add_freejoint().name = "object"
        self._shape_geoms = {}
        for shape in SHAPES:
            g = body.add_geom()
            g.name = f"object/{shape}"
            g.type = {"sphere": mujoco.mjtGeom.mjGEOM_SPHERE, "box": mujoco.mjtGeom.mjGEOM_BOX,
                      "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER}[shape]
            g.size = [0.02, 0.02, 0.02]
            g.contype, g.conaffinity = CONTYPE_WORLD, CONAFFINITY_WORLD
            g.condim = 4
            g.rgba = [0.85, 0.25, 0.2, 1]
            g.mass = 0.05
        body.explicitinertial = True
        body.mass = 0.05
        body.inertia = [1e-5, 1e-5, 1e-5]
        self.model = compile_spec(spec, hand)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._act = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in self.info.actuators])
        jids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in self.info.joints]
        self.qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self.vadr = np.array([m.jnt_dofadr[j] for j in jids])
        self.mimic = [(m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, a)],
                       m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, b)], mult, off)
                      for a, b, mult, off in self.info.mimic]
        self._mimic_v = [(m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, a)],
                          m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, b)])
                         for a, b, _, _ in self.info.mimic]
        self._master_col = {int(v): i for i, v in enumerate(self.vadr)}
        self.wrist_mocap = m.body_mocapid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, self.info.prefix + "~wrist")]
        free = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, self.info.prefix + "~free")
        self.free_qadr, self.free_vadr = m.jnt_qposadr[free], m.jnt_dofadr[free]
        self.object_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "object")
        self.object_qadr = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "object")]
        self._geom_ids = {s: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"object/{s}") for s in SHAPES}
        self.hand_bodies = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in self.info.bodies}
        self.table_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table")
        self.camera = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "front")
        self.substeps = int(round(1.0 / CONTROL_HZ / TIMESTEP))
        self.lower = hand.lower.double().numpy()
        self.upper = hand.upper.double().numpy()
        self._cmd = np.zeros(hand.dof)
        self._renderer = None
        self.camera_size = camera_size
        self.antialias = antialias
        self.object: ObjectState | None = None

    # -- episode state -------------------------------------------------------------------------------------------
    def set_object(self, obj: ObjectState | None) -> None:
        """Give the object slot ``obj``'s shape, size, mass and friction (``None``: no object, moved away)."""
        import mujoco

        m = self.model
        for shape, gid in self._geom_ids.items():
            active = obj is not None and shape == obj.shape
            m.geom_contype[gid] = CONTYPE_WORLD if active else 0
            m.geom_conaffinity[gid] = CONAFFINITY_WORLD if active else 0
            m.geom_rgba[gid, 3] = 1.0 if active else 0.0
            if active:
                size = np.zeros(3)
                size[: len(obj.size)] = obj.size
                m.geom_size[gid] = size
                m.geom_rbound[gid] = float(np.linalg.norm(obj.size)) if obj.shape != "sphere" else obj.size[0]
                if obj.shape == "cylinder":
                    m.geom_rbound[gid] = math.hypot(obj.size[0], obj.size[1])
                m.geom_friction[gid] = [obj.friction, 0.02, 0.001]
        if obj is not None:
            m.body_mass[self.object_body] = obj.mass
            m.body_inertia[self.object_body] = _inertia(obj.shape, obj.size, obj.mass)
        self.object = obj
        mujoco.mj_setConst(m, self.data)

    def reset(self, q, wrist_pos, wrist_rot: np.ndarray, obj: ObjectState | None) -> None:
        """Start an episode: joints at ``q`` (mimic joints consistent), wrist at its pose, the object at rest."""
        import mujoco

        m, d = self.model, self.data
        self.set_object(obj)
        mujoco.mj_resetData(m, d)
        q = np.clip(np.asarray(q, dtype=np.float64), self.lower, self.upper)
        d.qpos[self.qadr] = q
        for a, b, mult, off in self.mimic:
            d.qpos[a] = off + mult * d.qpos[b]
        oq = self.object_qadr
        if obj is None:
            d.qpos[oq: oq + 3] = [0.0, 0.0, -1.0]
        else:
            d.qpos[oq: oq + 3] = [obj.xy[0], obj.xy[1], obj.rest_z + 1e-4]
            d.qpos[oq + 3: oq + 7] = [math.cos(obj.yaw / 2), 0, 0, math.sin(obj.yaw / 2)]
        self.set_wrist(wrist_pos, wrist_rot, hand_too=True)
        d.ctrl[self._act] = q
        self._cmd = q.copy()
        mujoco.mj_forward(m, d)

    def set_wrist(self, pos, rot: np.ndarray, *, hand_too: bool = False) -> None:
        """Move the wrist target; with ``hand_too`` also put the hand there at rest (the weld then holds)."""
        import mujoco

        quat = np.zeros(4)
        rot = np.ascontiguousarray(rot, dtype=np.float64)
        mujoco.mju_mat2Quat(quat, rot.reshape(9))
        self.data.mocap_pos[self.wrist_mocap] = pos
        self.data.mocap_quat[self.wrist_mocap] = quat
        if hand_too:
            mount = np.asarray(self.hand.mount, dtype=np.float64)
            root = np.zeros(4)
            mujoco.mju_mat2Quat(root, np.ascontiguousarray(rot @ mount[:3, :3]).reshape(9))
            a = self.free_qadr
            self.data.qpos[a: a + 3] = np.asarray(pos, dtype=np.float64) + rot @ mount[:3, 3]
            self.data.qpos[a + 3: a + 7] = root
            v = self.free_vadr
            self.data.qvel[v: v + 6] = 0.0

    # -- stepping ------------------------------------------------------------------------------------------------
    def step(self, q_cmd, wrist_pos=None, wrist_rot=None) -> None:
        """One control period (1 / CONTROL_HZ s): joint targets and the wrist move linearly to the new command."""
        import mujoco

        m, d = self.model, self.data
        target = np.clip(np.asarray(q_cmd, dtype=np.float64), self.lower, self.upper)
        start = self._cmd
        p0 = d.mocap_pos[self.wrist_mocap].copy()
        q0 = d.mocap_quat[self.wrist_mocap].copy()
        q1 = None
        if wrist_rot is not None:
            q1 = np.zeros(4)
            mujoco.mju_mat2Quat(q1, np.ascontiguousarray(wrist_rot, dtype=np.float64).reshape(9))
        p1 = p0 if wrist_pos is None else np.asarray(wrist_pos, dtype=np.float64)
        n = self.substeps
        for k in range(1, n + 1):
            a = k / n
            d.ctrl[self._act] = start + a * (target - start)
            d.mocap_pos[self.wrist_mocap] = p0 + a * (p1 - p0)
            if q1 is not None:
                d.mocap_quat[self.wrist_mocap] = _slerp(q0, q1, a)
            mujoco.mj_step(m, d)
        self._cmd = target

    # -- reading -------------------------------------------------------------------------------------------------
    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[self.qadr].copy()

    @property
    def command(self) -> np.ndarray:
        return self._cmd.copy()

    def mimic_error(self) -> float:
        """Largest |q_mimic - (offset + multiplier * q_master)| over the mimic joints (rad or m)."""
        d = self.data
        return max((abs(d.qpos[a] - (off + mult * d.qpos[b])) for a, b, mult, off in self.mimic), default=0.0)

    def object_pose(self) -> np.ndarray:
        """Object position and quaternion (w, x, y, z), ``(7,)``."""
        oq = self.object_qadr
        return self.data.qpos[oq: oq + 7].copy()

    def wrist_pose(self) -> np.ndarray:
        return np.r_[self.data.mocap_pos[self.wrist_mocap], self.data.mocap_quat[self.wrist_mocap]]

    def hand_object_contacts(self) -> set[int]:
        """Hand bodies touching the object now."""
        return self.hand_contacts()[0]

    def hand_contacts(self) -> tuple[set[int], set[int]]:
        """Hand bodies touching the object, and those touching the table, now."""
        d, m = self.data, self.model
        obj, table = set(), set()
        for c in d.contact[: d.ncon]:
            g1, g2 = c.geom1, c.geom2
            b1, b2 = m.geom_bodyid[g1], m.geom_bodyid[g2]
            if b2 in self.hand_bodies:
                g1, g2, b1, b2 = g2, g1, b2, b1
            if b1 not in self.hand_bodies:
                continue
            if b2 == self.object_body:
                obj.add(int(b1))
            elif g2 == self.table_geom:
                table.add(int(b1))
        return obj, table

    def contact_normals(self) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
        """Hand-object contacts now: hand body -> [(point, normal pushing into the object)], world frame."""
        d, m = self.data, self.model
        out: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for c in d.contact[: d.ncon]:
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            n = c.frame[:3].copy()  # from geom1 to geom2
            if b2 == self.object_body and b1 in self.hand_bodies:
                out.setdefault(int(b1), []).append((c.pos.copy(), n))
            elif b1 == self.object_body and b2 in self.hand_bodies:
                out.setdefault(int(b2), []).append((c.pos.copy(), -n))
        return out

    def point_jacobian(self, body: int, point: np.ndarray) -> np.ndarray:
        """``(3, dof)``: how a point fixed to ``body`` moves per unit of each actuated joint (mimic joints follow
        their masters)."""
        import mujoco

        m, d = self.model, self.data
        jac = np.zeros((3, m.nv))
        mujoco.mj_jac(m, d, jac, None, np.asarray(point, dtype=np.float64), body)
        out = jac[:, self.vadr].copy()
        for (a, b, mult, _), (va, vb) in zip(self.mimic, self._mimic_v):
            out[:, self._master_col[vb]] += mult * jac[:, va]
        return out

    def finite(self) -> bool:
        d = self.data
        return bool(np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel)))

    def render(self) -> np.ndarray:
        """RGB image ``(H, W, 3)`` uint8 from the front camera (MuJoCo's renderer, EGL when headless)."""
        import mujoco

        if self._renderer is None:
            h, w = self.camera_size
            self._renderer = mujoco.Renderer(self.model, h, w)
            if not self.antialias:  # passes (the shadow map among them) that cost 40 % of a policy image's time
                R = mujoco.mjtRndFlag
                for f in (R.mjRND_SHADOW, R.mjRND_REFLECTION, R.mjRND_SKYBOX, R.mjRND_FOG, R.mjRND_HAZE):
                    self._renderer.scene.flags[f] = False
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    dot = float(q0 @ q1)
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    th = math.acos(dot)
    return (math.sin((1 - a) * th) * q0 + math.sin(a * th) * q1) / math.sin(th)


def _camera_quat(pos: np.ndarray, target: np.ndarray) -> list[float]:
    """A camera quaternion looking from ``pos`` at ``target`` with world z up (MuJoCo cameras look along -z)."""
    import mujoco

    back = pos - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.stack([right, up, back], axis=1).reshape(9))
    return q.tolist()
