"""The scripted demonstrator: plans in fingertip space from the object's pose and size, solves each hand's joints
by IK through xlhand's differentiable FK, and runs the plan in physics. It knows no hand by name.

Grasps (``xlhand.sim.grasp``): the grasping fingers close along paths from the open hand to the posture where
their tips meet; the object is placed (by moving the wrist, palm down) where the fingers meet it with balanced
contacts. The close is closed-loop, like a servo hand's grip command: each finger advances along its path until it
touches the object (or the table), then all squeeze together, then the wrist lifts. Among the few best geometric
candidates the demonstrator keeps the one that works in a short physics trial, cached per hand, task and object
size bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import zip_longest

import numpy as np
import torch

from xlhand.hand.model import Hand
from xlhand.sim.build import HUMAN_HAND_LENGTH, hand_length
from xlhand.sim.grasp import APPROACH as GRASP_CLEARANCE
from xlhand.sim.grasp import ClosingPaths, GraspCandidate, closing_paths, finger_joints, grasp_candidates
from xlhand.sim.tasks import SCALE_RANGE, Task, Trace, check_applicable, succeeded
from xlhand.sim.world import CONTROL_HZ, ObjectState, World, wrist_rotation

PITCHES = tuple(math.radians(d) for d in (0, 45, 90))  # wrist pitches (fingers down from horizontal) tried
CANDIDATES = 3  # geometric candidates per pitch
MIN_TOUCH = 3  # fingers (the thumb among them) a power grasp must touch the object with
LIFT = 0.12  # m the wrist lifts
TIP_RADIUS = 0.008  # m: a poking fingertip stays this far above the table (scales)
CLOSE_RATE = 1.0 / 16  # path fraction a finger advances per control step while closing
CLOSE_STEPS = 30  # at most this many control steps of closing
GRIP_FORCE = 2.0  # N each touching finger presses into the object with (human-sized hand; scales) ...
SAFETY, FRICTION_GUESS = 4.0, 0.8  # ... or enough to carry SAFETY times the weight at this friction
SIZE_BUCKET = 0.003  # m: grasps are planned and trialled per object size bucket (human-sized hand; scales)
TRIALS, TRIAL_SEED = 4, 12345  # physics trials per candidate when choosing a grasp, on objects from this seed

HOME_Z = 0.15  # m (scales): every episode starts with the open hand's fingertip centroid this high over the table
APPROACH = {"rise": 0.5, "over": 1.0, "down": 0.75}  # s: up to a clear height, over the start pose, down to it
CLEAR = 0.02  # m (scales): the hand's reach clears the object's top by this while it turns
PHASES = {"settle": 0.25, "descend": 1.0, "squeeze": 0.25, "lift": 1.0, "hold": 1.25, "open": 0.5, "after": 1.25}
POINT_PHASES = {"wait": 0.5, "point": 1.0, "hold": 1.5}
POKE_PHASES = {"push": 1.5, "hold": 0.75}


def episode_seconds(task: Task) -> float:
    """The longest the demonstrator's plan for ``task`` lasts (s), from the home pose."""
    if task.grasp == "point":
        return sum(POINT_PHASES.values())
    reach = sum(APPROACH.values()) + PHASES["settle"]
    if task.grasp == "poke":
        return reach + sum(POKE_PHASES.values())
    grasp = reach + PHASES["descend"] + CLOSE_STEPS / CONTROL_HZ + PHASES["squeeze"] + PHASES["lift"] + PHASES["hold"]
    return grasp + (PHASES["open"] + PHASES["after"] if task.success == "release" else 0.0)


def hand_scale(hand: Hand) -> float:
    return float(np.clip(hand_length(hand) / HUMAN_HAND_LENGTH, *SCALE_RANGE))


def _solve(hand: Hand, loss_fn, *, inits: int = 24, iters: int = 160, seed: int = 0) -> torch.Tensor:
    """The in-limit posture minimising ``loss_fn(q (B, dof), tips (B, F, 3)) -> (B,)``, best of ``inits``."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = hand.lower.double(), hand.upper.double()
    z = (torch.randn(inits, hand.dof, generator=g, dtype=torch.float64) * 1.2).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.08)
    for _ in range(iters):
        q = lo + (hi - lo) * torch.sigmoid(z)
        loss = loss_fn(q, hand.fingertips(q.float()).double())
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        q = lo + (hi - lo) * torch.sigmoid(z)
        best = int(torch.argmin(loss_fn(q, hand.fingertips(q.float()).double())))
    return q[best]


@dataclass
class HandPlanner:
    """Per-hand planning (IK, grasp candidates on ``world``'s collision geometry) and the reach range of each
    finger (for the point predicate)."""

    hand: Hand
    world: World
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
        self.joints = finger_joints(self.hand)  # finger -> its actuated joints (action vector indices)
        self.bodies = finger_bodies(self.world, self.hand)  # finger -> the MuJoCo bodies only it owns
        self._cache: dict = {}

    def extension(self, q: np.ndarray) -> np.ndarray:
        """``(T, dof)`` measured joints -> ``(T, F)`` fingertip distance from the wrist as a fraction of its range."""
        with torch.no_grad():
            d = self.hand.fingertips(torch.as_tensor(np.atleast_2d(q), dtype=torch.float32)).norm(dim=-1).double()
        return ((d.numpy() - self.reach_lo) / np.maximum(self.reach_hi - self.reach_lo, 1e-6)).clip(0, 1)

    def paths(self, task: Task) -> ClosingPaths:
        key = ("paths", task.name)
        if key not in self._cache:
            G = [self.hand.fingers.index(f) for f in task.grasp_fingers(self.hand.fingers)]
            self._cache[key] = closing_paths(self.hand, G, self.world.model, self.world.info.prefix)
        return self._cache[key]

    def candidates(self, task: Task, shape: str, size: tuple[float, ...]) -> list[GraspCandidate]:
        """Grasp candidates for an object of ``shape`` and ``size`` (rounded to a bucket): the best few of each
        wrist pitch, interleaved."""
        key = ("cands", task.name, shape, size)
        if key not in self._cache:
            rest = size[0] if shape == "sphere" else size[-1]
            wide = task.grasp in ("power", "wrap")  # the outer fingers of a wide hand may pass a narrow object
            per = [grasp_candidates(self.paths(task), shape, size, rest, p, self.scale, n=CANDIDATES,
                                    min_touch=MIN_TOUCH if wide else None) for p in PITCHES]
            self._cache[key] = [c for group in zip_longest(*per) for c in group if c is not None]
        return self._cache[key]

    def poke_rotation(self, room: float) -> np.ndarray:
        """The wrist rotation for poking with the pointing posture, fingers along +x: palm down when every other
        part of the hand then stays ``room`` m above the index tip's level or less below it, else the roll about
        the finger axis (palm down, up, or to either side) that keeps the rest of the hand highest."""
        if "poke_rot" not in self._cache:
            from xlhand.sim.grasp import surface_points

            fk, owner = surface_points(self.hand, self.world.model, self.world.info.prefix)
            q = torch.as_tensor(self.point_pose()[None], dtype=torch.float32)
            with torch.no_grad():
                pts = fk(q).double().numpy()[0]
                tip = self.hand.fingertips(q).double().numpy()[0, self.hand.fingers.index("index")]
            others = pts[owner != self.hand.fingers.index("index")]
            flip = np.diag([-1.0, -1.0, 1.0])  # half a turn about the finger axis
            rots = [wrist_rotation(0.0), wrist_rotation(0.0, palm="side"), wrist_rotation(0.0) @ flip,
                    wrist_rotation(0.0, palm="side") @ flip]
            # how far the lowest other point hangs below the index tip, per rotation
            below = [float(((tip - others) @ R.T)[:, 2].max()) if len(others) else 0.0 for R in rots]
            self._cache["poke_rot"] = (rots, below)
        rots, below = self._cache["poke_rot"]
        return rots[0] if below[0] <= room else rots[int(np.argmin(below))]

    def clear_height(self, obj: ObjectState | None) -> float:
        """A wrist height from which no posture or turn of the hand reaches the object."""
        top = 2 * obj.rest_z if obj is not None else 0.0
        return top + float(self.reach_hi.max()) + CLEAR * self.scale

    def home(self) -> Step:
        """The pose every episode starts from, demonstrated or not: the open hand (every finger), palm down,
        fingers along +x, its fingertip centroid ``HOME_Z`` (scaled) above the table's centre."""
        if "home" not in self._cache:
            from xlhand.sim.grasp import open_posture

            q = open_posture(self.hand, list(range(len(self.hand.fingers)))).numpy()
            rot = wrist_rotation(0.0)
            with torch.no_grad():
                c = self.hand.fingertips(torch.as_tensor(q[None], dtype=torch.float32)).double().numpy()[0].mean(0)
            self._cache["home"] = (q, np.array([0.0, 0.0, HOME_Z * self.scale]) - rot @ c, rot)
        q, pos, rot = self._cache["home"]
        return q.copy(), pos.copy(), rot.copy()

    def point_pose(self) -> np.ndarray:
        if "point" in self._cache:
            return self._cache["point"]
        fingers = self.hand.fingers
        i = fingers.index("index")
        lo = torch.as_tensor(self.reach_lo)
        span = torch.as_tensor(np.maximum(self.reach_hi - self.reach_lo, 1e-6))

        def loss(q, tips):
            ext = (tips.norm(dim=-1) - lo) / span
            others = torch.cat([ext[:, :i], ext[:, i + 1:]], 1)
            return (1 - ext[:, i]).pow(2) + others.pow(2).mean(1)

        q = _solve(self.hand, loss)
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


def _box_yaw(obj: ObjectState, cand: GraspCandidate) -> float:
    """Wrist yaw that lines the candidate's squeeze direction up with a face normal of the box (nearest yaw 0)."""
    s = wrist_rotation(0.0, pitch=cand.pitch) @ cand.facing
    base = obj.yaw - math.atan2(s[1], s[0])
    cands = [base + k * math.pi / 2 for k in range(-4, 5)]
    return min(cands, key=lambda y: abs(math.atan2(math.sin(y), math.cos(y))))


def size_bucket(size: tuple[float, ...], scale: float) -> tuple[float, ...]:
    """``size`` rounded to the grasp planner's buckets (``SIZE_BUCKET`` scaled to the hand)."""
    step = SIZE_BUCKET * scale
    return tuple(round(round(v / step) * step, 5) for v in size)


Step = tuple[np.ndarray, np.ndarray, np.ndarray]  # (joint command, wrist position, wrist rotation) per 20 Hz step


def _hold(q, pos, rot, seconds) -> Iterator[Step]:
    for _ in range(max(1, int(round(seconds * CONTROL_HZ)))):
        yield q, pos, rot


def _move(q0, q1, p0, p1, rot, seconds, rot1=None) -> Iterator[Step]:
    """A smooth move (cosine profile) of joints and wrist; with ``rot1`` the wrist also turns from ``rot``."""
    n = max(1, int(round(seconds * CONTROL_HZ)))
    for k in range(1, n + 1):
        a = 0.5 - 0.5 * math.cos(math.pi * k / n)  # smooth start and stop
        yield q0 + a * (q1 - q0), p0 + a * (p1 - p0), rot if rot1 is None else _turn(rot, rot1, a)


def _turn(r0: np.ndarray, r1: np.ndarray, a: float) -> np.ndarray:
    """The rotation a fraction ``a`` of the way from ``r0`` to ``r1`` (about the axis between them)."""
    rel = r0.T @ r1
    angle = math.acos(float(np.clip((np.trace(rel) - 1) / 2, -1.0, 1.0)))
    if angle < 1e-9:
        return r1.copy()
    if angle > math.pi - 1e-6:  # half a turn: the axis is the eigenvector of eigenvalue 1
        w, v = np.linalg.eigh((rel + rel.T) / 2)
        axis = v[:, int(np.argmax(w))]
    else:
        axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]]) / (2 * math.sin(angle))
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    th = a * angle
    return r0 @ (np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K)


def approach(home: Step, start: Step, clear_z: float) -> Iterator[Step]:
    """From the home pose up to ``clear_z`` (where no turn of the hand reaches the object), over the task's start
    pose (turning the wrist and shaping the fingers on the way), then straight down to it."""
    (qh, ph, rh), (qs, ps, rs) = home, start
    z = max(ph[2], ps[2], clear_z)
    up = np.array([ph[0], ph[1], z])
    yield from _move(qh, qh, ph, up, rh, APPROACH["rise"])
    yield from _move(qh, qs, up, np.array([ps[0], ps[1], z]), rh, APPROACH["over"], rot1=rs)
    yield from _move(qs, qs, np.array([ps[0], ps[1], z]), ps, rs, APPROACH["down"])


def _grasp_steps(world: World, planner: HandPlanner, task: Task, paths: ClosingPaths, cand: GraspCandidate,
                 p_grasp: np.ndarray, rot: np.ndarray) -> Iterator[Step]:
    """The closed-loop grasp: descend with the pre-grasp, close each finger until it touches, squeeze, lift."""
    fingers = planner.hand.fingers
    joints = planner.joints
    own = {i: planner.bodies.get(f, set()) for i, f in enumerate(fingers)}
    a = cand.a_pre.copy()
    q_pre = paths.posture(a, joints, fingers)
    p_above = p_grasp + np.array([0.0, 0.0, GRASP_CLEARANCE * planner.scale])
    yield from _hold(q_pre, p_above, rot, PHASES["settle"])
    yield from _move(q_pre, q_pre, p_above, p_grasp, rot, PHASES["descend"])
    moving = set(paths.grasp)
    q = q_pre
    for _ in range(CLOSE_STEPS):
        on_obj, on_table = world.hand_contacts()
        for i in list(moving):
            if own[i] & (on_obj | on_table) or a[i] >= 1.0:
                moving.discard(i)
        if not moving:
            break
        for i in moving:
            a[i] = min(1.0, a[i] + CLOSE_RATE)
        q = paths.posture(a, joints, fingers)
        yield q, p_grasp, rot
    # squeeze along the contact normals: joint offsets whose servo torques (J^T f) press each touching finger
    # straight into the object, so the grip adds no push along the surface (which would drag it into the table)
    q_sq = _normal_squeeze(world, planner, task, own, q)
    yield from _move(q, q_sq, p_grasp, p_grasp, rot, PHASES["squeeze"])
    p_up = p_grasp + np.array([0.0, 0.0, LIFT])
    yield from _move(q_sq, q_sq, p_grasp, p_up, rot, PHASES["lift"])
    yield from _hold(q_sq, p_up, rot, PHASES["hold"])
    if task.success == "release":
        yield from _move(q_sq, q_pre, p_up, p_up, rot, PHASES["open"])
        yield from _hold(q_pre, p_up, rot, PHASES["after"])


def _normal_squeeze(world: World, planner: HandPlanner, task: Task, own: dict[int, set[int]],
                    q_cmd: np.ndarray) -> np.ndarray:
    contacts = world.contact_normals()
    touching = [i for i in own if any(b in contacts for b in own[i])]
    obj = world.object
    per = max(GRIP_FORCE * planner.scale, SAFETY * obj.mass * 9.81 / (FRICTION_GUESS * max(len(touching), 1)))
    tau = np.zeros(world.hand.dof)
    for i in touching:
        pts = [(b, p, n) for b in own[i] if b in contacts for p, n in contacts[b]]
        for b, p, n in pts:
            tau += world.point_jacobian(b, p).T @ (n * per / len(pts))
    q = world.q
    out = q_cmd.copy()
    joints = planner.joints
    moved = sorted({int(j) for i in touching for j in joints[world.hand.fingers[i]]})
    out[moved] = q[moved] + tau[moved] / np.maximum(world.info.kp[moved], 1e-9)
    return np.clip(out, world.lower, world.upper)


def _grasp_pose(obj: ObjectState, cand: GraspCandidate) -> tuple[np.ndarray, np.ndarray]:
    """Wrist rotation (palm down) and grasp position putting ``cand``'s centre on the object's centre."""
    rot = wrist_rotation(_box_yaw(obj, cand) if obj.shape == "box" else 0.0, pitch=cand.pitch)
    centre = np.array([obj.xy[0], obj.xy[1], obj.rest_z])
    return rot, centre - rot @ cand.centre


def _run_grasp(world: World, planner: HandPlanner, task: Task, seed: int, obj: ObjectState,
               cand: GraspCandidate, render: bool, from_home: bool = True) -> Episode:
    """The grasp episode; ``from_home=False`` (the short trials that choose a grasp) starts at the pre-grasp."""
    paths = planner.paths(task)
    rot, p_grasp = _grasp_pose(obj, cand)
    q_pre = paths.posture(cand.a_pre, planner.joints, planner.hand.fingers)
    start = (q_pre, p_grasp + np.array([0.0, 0.0, GRASP_CLEARANCE * planner.scale]), rot)
    steps = _grasp_steps(world, planner, task, paths, cand, p_grasp, rot)
    if from_home:
        home = planner.home()
        steps = _chain(approach(home, start, planner.clear_height(obj)), steps)
        return execute(world, planner, task, seed, obj, home, steps, render=render)
    return execute(world, planner, task, seed, obj, start, steps, render=render)


def _chain(*parts: Iterator[Step]) -> Iterator[Step]:
    for part in parts:
        yield from part


def choose_grasp(world: World, planner: HandPlanner, task: Task, obj: ObjectState) -> GraspCandidate | None:
    """The grasp candidate for ``obj``'s size bucket that does best in short physics trials: objects of the
    bucket's size at the two hard corners of the task's ranges in turn (heaviest and least friction: it slips out;
    lightest and most friction: a finger that meets it first tips it instead of sliding it), placed and turned at
    random with a fixed seed; cached per hand, task and bucket. Trialled at the middle of the ranges, an Ability
    cylinder grasp won 3 of 3 trials and 0 of 8 episodes; at the heavy corner alone, an Allegro pinch won 6 of 6
    and 3 of 8 episodes, and it fails at the light, grippy corner."""
    size = size_bucket(obj.size, planner.scale)
    key = ("choice", task.name, size)
    if key in planner._cache:
        return planner._cache[key]
    cands = planner.candidates(task, obj.shape, size)
    r = task.object
    rng = np.random.default_rng(TRIAL_SEED)
    corners = [(max(r.mass), min(r.friction)), (min(r.mass), max(r.friction))]
    trials = [ObjectState(obj.shape, size, float(corners[k % 2][0]), float(corners[k % 2][1]),
                          tuple(float(v) for v in rng.uniform(-r.jitter, r.jitter, 2) * planner.scale),
                          float(rng.uniform(-math.pi, math.pi)) if r.random_yaw else 0.0) for k in range(TRIALS)]
    best, best_wins = None, -1
    for cand in cands:
        wins = 0
        for k, trial in enumerate(trials):
            wins += _run_grasp(world, planner, task, -1, trial, cand, False, from_home=False).success
            if wins + (TRIALS - k - 1) <= best_wins:
                break  # cannot beat the best any more
        if wins > best_wins:
            best, best_wins = cand, wins
        if wins == TRIALS:
            break
    planner._cache[key] = best
    return best


def run_episode(world: World, planner: HandPlanner, task: Task, seed: int, *, render: bool = False) -> Episode:
    """One scripted episode of ``task`` with seed ``seed`` (the object drawn from the task's ranges)."""
    check_applicable(task, planner.hand)
    rng = np.random.default_rng(seed)
    s = planner.scale
    obj = task.object.sample(rng, s) if task.object is not None else None
    home = planner.home()
    if task.grasp == "point":  # where the hand is: at home, clear of the table, in the camera's view
        q_open, pos, rot = home
        q_pt = planner.point_pose()
        P = POINT_PHASES
        steps = [*_hold(q_open, pos, rot, P["wait"]), *_move(q_open, q_pt, pos, pos, rot, P["point"]),
                 *_hold(q_pt, pos, rot, P["hold"])]
        return execute(world, planner, task, seed, obj, home, iter(steps), render=render)
    if task.grasp == "poke":
        q_pt = planner.point_pose()
        with torch.no_grad():
            tips = planner.hand.fingertips(torch.as_tensor(q_pt[None], dtype=torch.float32)).double().numpy()[0]
        i = planner.hand.fingers.index("index")
        z_tip = 0.55 * 2 * obj.rest_z  # the index tip meets the box a little above its middle
        rot = planner.poke_rotation(z_tip - TIP_RADIUS * s)
        tips_w = tips @ rot.T
        bx, by = obj.xy
        face = bx - obj.size[0] * abs(math.cos(obj.yaw)) - obj.size[1] * abs(math.sin(obj.yaw))
        p0 = np.array([face - 0.03 * s - 0.02, by, z_tip]) - tips_w[i]
        p1 = p0 + np.array([0.03 * s + 0.02 + 0.06, 0.0, 0.0])
        steps = [*approach(home, (q_pt, p0, rot), planner.clear_height(obj)), *_hold(q_pt, p0, rot, PHASES["settle"]),
                 *_move(q_pt, q_pt, p0, p1, rot, POKE_PHASES["push"]), *_hold(q_pt, p1, rot, POKE_PHASES["hold"])]
        return execute(world, planner, task, seed, obj, home, iter(steps), render=render)
    cand = choose_grasp(world, planner, task, obj)
    if cand is None:  # no geometric grasp at all: an honest failure, recorded as a hold at home
        return execute(world, planner, task, seed, obj, home, _hold(*home, 1.0), render=render)
    return _run_grasp(world, planner, task, seed, obj, cand, render)


def execute(world: World, planner: HandPlanner, task: Task, seed: int, obj: ObjectState | None, start,
            steps: Iterator[Step], *, render: bool) -> Episode:
    """Run ``steps`` from ``start`` and judge them. ``steps`` may be a generator that reads ``world`` between
    steps (a closed-loop controller): it is advanced only after the previous step has been simulated."""
    q0, p0, r0 = start
    world.reset(q0, p0, r0, obj)
    hand_fingers = planner.hand.fingers
    index_bodies = planner.bodies.get("index", set())
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
    finished = world.finite()
    states_a = np.array(states)
    trace = Trace(object_pos=np.array(objs)[:, :3], wrist_pos=np.array(wrists)[:, :3], index_contact=np.array(icont),
                  hand_contact=np.array(hcont), extension=planner.extension(states_a), fingers=list(hand_fingers),
                  rest_z=obj.rest_z if obj is not None else 0.0)
    ok = finished and succeeded(task, trace)
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
