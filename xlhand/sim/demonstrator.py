"""The scripted demonstrator: plans in fingertip space from the object's pose and size, solves each hand's joints
by IK through xlhand's differentiable FK, and runs the plan in physics. It knows no hand by name.

A grasp is synthesised in the canonical hand frame (fingers +z, palm +x, thumb +y): the grasping fingertips are
put on a sphere (or, for an upright cylinder, a circle about the approach axis) of radius ``object - squeeze``
around a centre ``c`` in front of the palm, their directions from ``c`` balanced (they oppose each other), the
other fingers kept above the object and every fingertip above the table. The pre-grasp keeps ``c`` and opens the
grasping fingers to ``object + clearance`` measured across the approach axis, so the hand can come straight down.
The wrist then goes palm-down over the object (``c`` on the object), descends, closes, lifts and holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from xlhand.hand.kinematics import FingertipFK
from xlhand.hand.model import Hand
from xlhand.sim.build import HUMAN_HAND_LENGTH, hand_length
from xlhand.sim.tasks import SCALE_RANGE, Task, Trace, applicable, check_applicable, succeeded
from xlhand.sim.world import CONTROL_HZ, ObjectState, World, wrist_rotation

SQUEEZE = 0.012  # m the closed fingertip targets sit inside the object surface (human-sized hand; scales)
CLEARANCE = 0.025  # m the open fingertips stay outside the object across the approach axis
PALM_GAP = 0.012  # m between the palm and a power-grasped object
APPROACH = 0.08  # m above the grasp pose where the wrist starts
LIFT = 0.12  # m the wrist lifts
TIP_RADIUS = 0.008  # m: fingertip pads are kept this far above the table
BOX_GRIP_HEIGHT = 0.35  # boxes are gripped this fraction of their half-height above the centre
LINK_CLEARANCE = 0.008  # m between a pinching finger's links (not its tip) and the object
EQUATOR = 0.25  # grasping fingertips at most this fraction of the object's radius above its centre

PHASES = {"settle": 0.25, "descend": 1.0, "close": 0.75, "lift": 1.0, "hold": 1.25, "open": 0.5, "after": 1.25}


def hand_scale(hand: Hand) -> float:
    return float(np.clip(hand_length(hand) / HUMAN_HAND_LENGTH, *SCALE_RANGE))


def _solve(hand: Hand, loss_fn, *, inits: int = 24, iters: int = 160, seed: int = 0, q0: torch.Tensor | None = None,
           c0: torch.Tensor | None = None, fit_c: bool = True):
    """Minimise ``loss_fn(q (B,dof), tips (B,F,3), c (B,3)) -> (B,)`` over in-limit q (and c); best of ``inits``."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = hand.lower.double(), hand.upper.double()
    z = torch.randn(inits, hand.dof, generator=g, dtype=torch.float64) * 1.2
    if q0 is not None:
        u = ((q0.double() - lo) / (hi - lo)).clamp(1e-3, 1 - 1e-3)
        z[0] = torch.log(u / (1 - u))
    c = (c0.double().expand(inits, 3).clone() if c0 is not None else torch.zeros(inits, 3, dtype=torch.float64))
    z.requires_grad_(True)
    c.requires_grad_(fit_c)
    opt = torch.optim.Adam([{"params": [z], "lr": 0.08}] + ([{"params": [c], "lr": 0.003}] if fit_c else []))
    for _ in range(iters):
        q = lo + (hi - lo) * torch.sigmoid(z)
        tips = hand.fingertips(q.float()).double()
        loss = loss_fn(q, tips, c)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        q = lo + (hi - lo) * torch.sigmoid(z)
        loss = loss_fn(q, hand.fingertips(q.float()).double(), c)
        best = int(torch.argmin(loss))
    return q[best].detach(), c[best].detach(), float(loss[best])


@dataclass
class GraspPlan:
    q_pre: np.ndarray
    q_close: np.ndarray
    centre: np.ndarray  # hand frame
    squeeze_dir: np.ndarray  # hand frame, thumb minus the other grasping fingers (unit)
    residual: float


@dataclass
class HandPlanner:
    """Per-hand IK and the reach range of each finger (for the point predicate)."""

    hand: Hand
    scale: float = 1.0
    reach_lo: np.ndarray = field(default=None)
    reach_hi: np.ndarray = field(default=None)

    def __post_init__(self):
        self.scale = hand_scale(self.hand)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            q = self.hand.sample(4096, generator=g)
            d = self.hand.fingertips(q).norm(dim=-1)
        self.reach_lo = d.min(0).values.double().numpy()
        self.reach_hi = d.max(0).values.double().numpy()
        self._cache: dict = {}

    def finger_points(self, roles: list[str]) -> tuple[FingertipFK, list[int]]:
        """FK of points along the links of the fingers ``roles`` (joint origins and the midpoints between them,
        the fingertip excluded), for keeping finger links off the object; also each point's finger index."""
        key = ("points", tuple(roles))
        if key not in self._cache:
            robot, pts, owner = self.hand.robot, [], []
            for k, role in enumerate(roles):
                tip = self.hand.tips[role]
                chain = [j for j in robot.chain_to(tip.link) if j.movable]
                for a, b in zip(chain, chain[1:] + [None]):
                    nxt = (b.origin[:3, 3] if b is not None and b.parent == a.child else None)
                    pts.append((a.child, np.zeros(3)))
                    owner.append(k)
                    if nxt is not None:
                        pts.append((a.child, 0.5 * nxt))
                        owner.append(k)
            self._cache[key] = (FingertipFK(robot, pts, self.hand.mount), owner)
        return self._cache[key]

    def extension(self, q: np.ndarray) -> np.ndarray:
        """``(T, dof)`` measured joints -> ``(T, F)`` fingertip distance from the wrist as a fraction of its range."""
        with torch.no_grad():
            d = self.hand.fingertips(torch.as_tensor(np.atleast_2d(q), dtype=torch.float32)).norm(dim=-1).double()
        return ((d.numpy() - self.reach_lo) / np.maximum(self.reach_hi - self.reach_lo, 1e-6)).clip(0, 1)

    def grasp(self, task: Task, radius: float, height: float, mode: str) -> GraspPlan:
        """Close and pre-grasp postures for an object of ``radius`` (across the grasp) and ``height`` (half,
        along the approach); ``mode``: "sphere" (point centre) or "axis" (circle about the approach axis)."""
        key = (task.name, round(radius, 4), round(height, 4), mode)
        if key in self._cache:
            return self._cache[key]
        hand, s = self.hand, self.scale
        fingers = hand.fingers
        G = [fingers.index(f) for f in task.grasp_fingers(fingers)]
        U = [i for i in range(len(fingers)) if i not in G]
        rho = max(radius - SQUEEZE * s, 0.4 * radius)
        power = task.grasp in ("power", "wrap")
        ref = max(radius, 0.01)

        def geometry(tips, c, which):
            v = tips[:, which] - c[:, None]
            if mode == "axis":
                v = v * torch.tensor([0.0, 1.0, 1.0], dtype=v.dtype)
            return v

        links_fk, _ = self.finger_points([fingers[i] for i in G])
        keep_out = radius + LINK_CLEARANCE * s

        def clear_links(q, c):
            pts = links_fk(q.float()).double() - c[:, None]
            if mode == "axis":
                pts = pts * torch.tensor([0.0, 1.0, 1.0], dtype=pts.dtype)
            return (torch.relu(keep_out - pts.norm(dim=-1)) / ref).pow(2).sum(1)

        def close_loss(q, tips, c):
            v = geometry(tips, c, G)
            d = v.norm(dim=-1).clamp_min(1e-6)
            e = ((d - rho) / ref).pow(2).mean(1)
            e = e + 2.0 * (v / d[..., None]).mean(1).pow(2).sum(-1)
            gap = c[:, 0] - (radius + PALM_GAP * s) if mode == "sphere" else c[:, 0] - (PALM_GAP * s + 0.3 * height)
            e = e + (gap / ref).pow(2) * (1.0 if power else 0.0) + (torch.relu(-gap) / ref).pow(2) * 10
            floor = c[:, None, 0] + height - TIP_RADIUS * s  # table height in hand x (palm normal points down)
            e = e + 10 * (torch.relu(tips[..., 0] - floor) / ref).pow(2).sum(1)
            # grasping tips no higher than just above the object's centre: contacts that can carry it up
            above = c[:, None, 0] - tips[:, G, 0]
            e = e + 5 * (torch.relu(above - EQUATOR * ref) / ref).pow(2).sum(1)
            if not power:  # a pinch touches with the fingertips only
                e = e + 3 * clear_links(q, c)
            if U:
                top = c[:, None, 0] - height - 0.01 * s
                e = e + 3 * (torch.relu(tips[:, U, 0] - top) / ref).pow(2).sum(1)
            return e

        c0 = torch.tensor([radius + PALM_GAP * s, 0.0, 0.55 * hand_length(hand)], dtype=torch.float64)
        q_close, c, res = _solve(hand, close_loss, c0=c0)
        c_b = c[None]

        with torch.no_grad():  # pre-grasp targets: each closed grasping tip backed off radially, across the approach
            v_close = hand.fingertips(q_close[None].float()).double()[0, G] - c
            out = v_close * torch.tensor([0.0, 1.0, 1.0], dtype=v_close.dtype)
            out = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            pre_targets = c + v_close * torch.tensor([1.0, 0.0, 0.0], dtype=v_close.dtype) \
                + out * (radius + CLEARANCE * s)

        def pre_loss(q, tips, c):
            v = tips[:, G] - c[:, None]
            across = v * torch.tensor([0.0, 1.0, 1.0], dtype=v.dtype)
            d = across.norm(dim=-1)
            want = radius + CLEARANCE * s
            e = (torch.relu(want - d) / ref).pow(2).sum(1) * 10
            e = e + ((tips[:, G] - pre_targets) / ref).pow(2).sum(-1).mean(1)
            floor = c[:, None, 0] + height - TIP_RADIUS * s
            e = e + 10 * (torch.relu(tips[..., 0] - floor) / ref).pow(2).sum(1)
            e = e + 0.05 * ((q - torch.as_tensor(q_close)) ** 2).sum(1)
            # the closing sweep (joints interpolated from here to q_close) reaches the object only at its end
            for a in (0.3, 0.6, 0.8):
                mid = hand.fingertips((q + a * (qc - q)).float()).double()[:, G] - c[:, None]
                e = e + 3 * (torch.relu(radius + 0.004 * s - mid.norm(dim=-1)) / ref).pow(2).sum(1)
            if U:
                top = c[:, None, 0] - height - 0.01 * s
                e = e + 3 * (torch.relu(tips[:, U, 0] - top) / ref).pow(2).sum(1)
            return e

        qc = torch.as_tensor(q_close)
        q_pre, _, _ = _solve(hand, pre_loss, c0=c_b[0], fit_c=False, q0=q_close, inits=8, iters=120, seed=1)
        with torch.no_grad():
            tips = hand.fingertips(q_close[None].float()).double()[0]
        gi = task.grasp_fingers(fingers)
        if "thumb" in gi and len(gi) > 1:
            t = tips[fingers.index("thumb")]
            rest = torch.stack([tips[fingers.index(f)] for f in gi if f != "thumb"]).mean(0)
            sd = (t - rest).numpy()
        else:
            sd = np.array([0.0, 1.0, 0.0])
        sd = sd / max(np.linalg.norm(sd), 1e-9)
        plan = GraspPlan(q_pre.numpy(), q_close.numpy(), c.numpy(), sd, res)
        self._cache[key] = plan
        return plan

    def point_pose(self) -> np.ndarray:
        if "point" in self._cache:
            return self._cache["point"]
        fingers = self.hand.fingers
        i = fingers.index("index")
        lo = torch.as_tensor(self.reach_lo)
        span = torch.as_tensor(np.maximum(self.reach_hi - self.reach_lo, 1e-6))

        def loss(q, tips, c):
            ext = (tips.norm(dim=-1) - lo) / span
            others = torch.cat([ext[:, :i], ext[:, i + 1:]], 1)
            return (1 - ext[:, i]).pow(2) + others.pow(2).mean(1)

        q, _, _ = _solve(self.hand, loss, fit_c=False)
        self._cache["point"] = q.numpy()
        return self._cache["point"]


@dataclass
class Episode:
    """One scripted (or policy) episode: 20 Hz rows, plus the task's verdict."""

    task: str
    seed: int
    success: bool
    actions: np.ndarray  # (T, dof) joint commands
    states: np.ndarray  # (T, dof) measured joints
    object_poses: np.ndarray  # (T, 7)
    wrist_poses: np.ndarray  # (T, 7)
    images: np.ndarray | None  # (T, H, W, 3) uint8
    object: ObjectState | None


def _yaw_for_squeeze(sd: np.ndarray, obj: ObjectState | None) -> float:
    """Wrist yaw that lines the squeeze direction up with a face normal of a box (any yaw suits a round object)."""
    if obj is None or obj.shape != "box":
        return 0.0
    s = wrist_rotation(0.0) @ sd
    alpha = math.atan2(s[1], s[0])
    base = obj.yaw - alpha
    cands = [base + k * math.pi / 2 for k in range(-4, 5)]
    return min(cands, key=lambda y: abs(math.atan2(math.sin(y), math.cos(y))))


def run_episode(world: World, planner: HandPlanner, task: Task, seed: int, *, render: bool = False) -> Episode:
    """One scripted episode of ``task`` with seed ``seed`` (the object drawn from the task's ranges)."""
    check_applicable(task, planner.hand)
    rng = np.random.default_rng(seed)
    s = planner.scale
    obj = task.object.sample(rng, s) if task.object is not None else None
    steps: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []  # (q_cmd, wrist_pos, wrist_rot)

    def hold(q, pos, rot, seconds):
        for _ in range(max(1, int(round(seconds * CONTROL_HZ)))):
            steps.append((q, pos, rot))

    def move(q0, q1, p0, p1, rot, seconds):
        n = max(1, int(round(seconds * CONTROL_HZ)))
        for k in range(1, n + 1):
            a = 0.5 - 0.5 * math.cos(math.pi * k / n)  # smooth start and stop
            steps.append((q0 + a * (q1 - q0), p0 + a * (p1 - p0), rot))

    if task.grasp == "point":
        rot = wrist_rotation(0.0)
        pos = np.array([0.0, 0.0, 0.25 * s + 0.1])
        q_open = np.clip(np.zeros(world.hand.dof), world.lower, world.upper)
        q_pt = planner.point_pose()
        start = (q_open, pos, rot)
        move(q_open, q_pt, pos, pos, rot, 1.0)
        hold(q_pt, pos, rot, 1.5)
    elif task.grasp == "poke":
        rot = wrist_rotation(0.0)
        q_pt = planner.point_pose()
        fingers = planner.hand.fingers
        with torch.no_grad():
            tips = planner.hand.fingertips(torch.as_tensor(q_pt[None], dtype=torch.float32)).double().numpy()[0]
        tips_w = tips @ rot.T
        i = fingers.index("index")
        bx, by = obj.xy
        hx = obj.size[0]
        face = bx - hx * abs(math.cos(obj.yaw)) - obj.size[1] * abs(math.sin(obj.yaw))
        z_tip = max(0.55 * 2 * obj.rest_z, -(tips_w[:, 2] - tips_w[i, 2]).max() + TIP_RADIUS * s + 0.004)
        z_tip = min(z_tip, 2 * obj.rest_z - 0.004)
        tip0 = np.array([face - 0.03 * s - 0.02, by, z_tip])
        p0 = tip0 - tips_w[i]
        p1 = p0 + np.array([0.03 * s + 0.02 + 0.06, 0.0, 0.0])
        start = (q_pt, p0 + np.array([0, 0, 0.0]), rot)
        hold(q_pt, p0, rot, PHASES["settle"])
        move(q_pt, q_pt, p0, p1, rot, 1.5)
        hold(q_pt, p1, rot, 0.75)
    else:
        if obj.shape == "sphere":
            radius, height, mode = obj.size[0], obj.size[0], "sphere"
        elif obj.shape == "box":  # pinched high on its vertical faces, keeping the hand off the table
            radius, height, mode = obj.size[0], (1 + BOX_GRIP_HEIGHT) * obj.size[2], "sphere"
        else:
            radius, height, mode = obj.size[0], obj.size[1], "axis"
        plan = planner.grasp(task, round(radius, 3), round(height, 3), mode)
        rot = wrist_rotation(_yaw_for_squeeze(plan.squeeze_dir, obj))
        lift_c = BOX_GRIP_HEIGHT * obj.size[2] if obj.shape == "box" else 0.0
        centre = np.array([obj.xy[0], obj.xy[1],
                           obj.rest_z + lift_c if mode == "sphere" else 2 * obj.rest_z - 0.3 * height])
        p_grasp = centre - rot @ plan.centre
        p_above = p_grasp + np.array([0, 0, APPROACH * s])
        p_up = p_grasp + np.array([0, 0, LIFT])
        start = (plan.q_pre, p_above, rot)
        hold(plan.q_pre, p_above, rot, PHASES["settle"])
        move(plan.q_pre, plan.q_pre, p_above, p_grasp, rot, PHASES["descend"])
        move(plan.q_pre, plan.q_close, p_grasp, p_grasp, rot, PHASES["close"])
        move(plan.q_close, plan.q_close, p_grasp, p_up, rot, PHASES["lift"])
        hold(plan.q_close, p_up, rot, PHASES["hold"])
        if task.success == "release":
            move(plan.q_close, plan.q_pre, p_up, p_up, rot, PHASES["open"])
            hold(plan.q_pre, p_up, rot, PHASES["after"])
    return execute(world, planner, task, seed, obj, start, steps, render=render,
                   grasp_wrist_z=float(steps[0][1][2]) if task.grasp in ("point", "poke") else float(p_grasp[2]))


def execute(world: World, planner: HandPlanner, task: Task, seed: int, obj: ObjectState | None, start, steps,
            *, render: bool, grasp_wrist_z: float) -> Episode:
    """Run ``steps`` (q command, wrist position, wrist rotation per 20 Hz step) from ``start`` and judge them."""
    q0, p0, r0 = start
    world.reset(q0, p0, r0, obj)
    hand_fingers = planner.hand.fingers
    index_bodies = finger_bodies(world, planner.hand).get("index", set())
    acts, states, objs, wrists, imgs, icont, hcont = [], [], [], [], [], [], []
    for q_cmd, pos, rot in steps:
        world.step(q_cmd, pos, rot)
        contacts = world.hand_object_contacts()
        acts.append(world.command)
        states.append(world.q)
        objs.append(world.object_pose())
        wrists.append(world.wrist_pose())
        icont.append(bool(contacts & index_bodies))
        hcont.append(bool(contacts))
        if render:
            imgs.append(world.render())
        if not world.finite():
            break
    states_a = np.array(states)
    trace = Trace(object_pos=np.array(objs)[:, :3], wrist_pos=np.array(wrists)[:, :3], index_contact=np.array(icont),
                  hand_contact=np.array(hcont), extension=planner.extension(states_a), fingers=list(hand_fingers),
                  rest_z=obj.rest_z if obj is not None else 0.0, grasp_wrist_z=grasp_wrist_z)
    ok = world.finite() and len(states) == len(steps) and succeeded(task, trace)
    return Episode(task=task.name, seed=seed, success=bool(ok), actions=np.array(acts), states=states_a,
                   object_poses=np.array(objs), wrist_poses=np.array(wrists),
                   images=np.array(imgs) if render else None, object=obj)


def finger_bodies(world: World, hand: Hand) -> dict[str, set[int]]:
    """MuJoCo body ids of each finger's own links (links no other finger shares)."""
    import mujoco

    chains = {role: {j.child for j in hand.robot.chain_to(t.link)} for role, t in hand.tips.items()}
    out = {}
    for role, links in chains.items():
        shared = set().union(*(v for r, v in chains.items() if r != role)) if len(chains) > 1 else set()
        own = links - shared
        out[role] = {mujoco.mj_name2id(world.model, mujoco.mjtObj.mjOBJ_BODY, world.info.prefix + name) for name in own}
    return out


def success_table(hands, tasks, episodes: int, *, seed: int = 0, progress=None) -> dict[str, dict[str, float | None]]:
    """Success rate per hand and task over ``episodes`` seeded episodes (``None``: not applicable)."""
    table: dict[str, dict[str, float | None]] = {}
    for hand in hands:
        world = World(hand)
        planner = HandPlanner(hand)
        row = {}
        for task in tasks:
            if not applicable(task, hand):
                row[task.name] = None
                continue
            wins = 0
            for k in range(episodes):
                wins += run_episode(world, planner, task, seed + k).success
                if progress is not None:
                    progress()
            row[task.name] = wins / episodes
        table[hand.name] = row
        world.close()
    return table
