"""The task suite: instructions, objects with per-episode ranges, the fingers a task needs, and physical success.

Defined once for every hand. Object sizes are written for a human-sized hand (``HUMAN_HAND_LENGTH``, wrist to
farthest fingertip) and scale with the hand's length (clamped to ``SCALE_RANGE``), so a small gripper gets a small
cube; masses, frictions and the lift heights do not scale. Success is judged on the physics trace only
(object and wrist poses, contacts, measured joints), never on what the controller intended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xlhand.errors import XlhandError
from xlhand.sim.world import CONTROL_HZ, ObjectState

SCALE_RANGE = (0.6, 1.6)
LIFT_HEIGHT = 0.05  # m the object must stay above its resting height ...
LIFT_SECONDS = 1.0  # ... for this long, while the wrist is lifted by at least LIFT_HEIGHT
POKE_DISTANCE = 0.03  # m the poked box must move
POINT_EXTENDED, POINT_FLEXED = 0.75, 0.45  # fraction of a finger's reach range: index above, the others below
POINT_SECONDS = 1.0


@dataclass(frozen=True)
class ObjectRange:
    """Uniform ranges an episode's object is drawn from (sizes and jitter for a human-sized hand, metres)."""

    shape: str
    size_lo: tuple[float, ...]
    size_hi: tuple[float, ...]
    mass: tuple[float, float]  # kg
    friction: tuple[float, float]
    jitter: float = 0.02  # m, uniform offset of the resting position in x and y
    random_yaw: bool = True
    cube: bool = False  # one size drawn for all three half-sizes

    def sample(self, rng: np.random.Generator, scale: float) -> ObjectState:
        size = tuple(float(rng.uniform(lo, hi)) * scale for lo, hi in zip(self.size_lo, self.size_hi))
        if self.cube:
            size = (size[0],) * 3
        xy = tuple(float(v) for v in rng.uniform(-self.jitter, self.jitter, 2) * scale)
        yaw = float(rng.uniform(-math.pi, math.pi)) if self.random_yaw else 0.0
        return ObjectState(self.shape, size, float(rng.uniform(*self.mass)), float(rng.uniform(*self.friction)),
                           xy, yaw)


@dataclass(frozen=True)
class Task:
    """One task. ``grasp``: how the demonstrator does it; ``fingers``: the fingers it uses (``()`` = every finger
    present, then the hand needs a thumb and ``min_fingers`` fingers in all); ``success``: the predicate."""

    name: str
    instruction: str
    grasp: str  # "power" | "pinch" | "wrap" | "poke" | "point"
    success: str  # "lift" | "release" | "poke" | "point"
    fingers: tuple[str, ...] = ()
    min_fingers: int = 3
    object: ObjectRange | None = None

    def missing(self, hand_fingers) -> list[str]:
        """Why a hand cannot do this task (an empty list: applicable)."""
        have = set(hand_fingers)
        if self.fingers:
            return [f"no {f} finger" for f in self.fingers if f not in have]
        out = []
        if self.grasp in ("power", "wrap") and "thumb" not in have:
            out.append("no thumb")
        if len(have) < self.min_fingers:
            out.append(f"{len(have)} fingers, needs {self.min_fingers}")
        return out

    def grasp_fingers(self, hand_fingers) -> list[str]:
        return [f for f in hand_fingers if not self.fingers or f in self.fingers]


BALL = ObjectRange("sphere", (0.030,), (0.036,), (0.05, 0.15), (0.8, 1.2))
SMALL_CUBE = ObjectRange("box", (0.0125,) * 3, (0.015,) * 3, (0.02, 0.05), (0.8, 1.2), cube=True)
SMALL_BALL = ObjectRange("sphere", (0.020,), (0.024,), (0.03, 0.08), (0.8, 1.2))
CYLINDER = ObjectRange("cylinder", (0.022, 0.040), (0.026, 0.050), (0.05, 0.12), (0.8, 1.2), random_yaw=False)
BOX = ObjectRange("box", (0.030, 0.030, 0.035), (0.035, 0.035, 0.045), (0.05, 0.10), (0.3, 0.5))

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("lift_ball", "grasp the ball with the whole hand and lift it", "power", "lift", object=BALL),
    Task("pinch_cube_index", "pinch the small cube between thumb and index finger and lift it", "pinch", "lift",
         fingers=("thumb", "index"), object=SMALL_CUBE),
    Task("pinch_cube_middle", "pinch the small cube between thumb and middle finger and lift it", "pinch", "lift",
         fingers=("thumb", "middle"), object=SMALL_CUBE),
    Task("tripod_ball", "pick up the small ball with thumb, index and middle finger", "pinch", "lift",
         fingers=("thumb", "index", "middle"), object=SMALL_BALL),
    Task("hold_cylinder", "grasp the upright cylinder from above and hold it up", "wrap", "lift", object=CYLINDER),
    Task("poke_box", "push the box away with the index finger", "poke", "poke", fingers=("index",), object=BOX),
    Task("point_index", "point with the index finger", "point", "point", fingers=("index",), min_fingers=2),
    Task("release_ball", "lift the ball, then open the hand and let it go", "power", "release", object=BALL),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise XlhandError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    return TASKS[name]


def check_applicable(task: Task, hand) -> None:
    """A one-line error when ``hand`` lacks the fingers ``task`` needs."""
    why = task.missing(hand.fingers)
    if task.name == "point_index" and len(hand.fingers) < 2:
        why.append("pointing needs a second finger to curl")
    elif task.name == "point_index" and "index" in hand.fingers and not _moves_alone(hand, "index"):
        why.append("its index finger has no joint of its own (it cannot extend while the others curl)")
    if why:
        raise XlhandError(f"task {task.name!r} is not applicable to {hand.name}: {'; '.join(why)}")


def _moves_alone(hand, finger: str) -> bool:
    from xlhand.sim.grasp import finger_joints

    joints = finger_joints(hand)
    others = set().union(*(set(v.tolist()) for f, v in joints.items() if f != finger))
    return bool(set(joints[finger].tolist()) - others)


def applicable(task: Task, hand) -> bool:
    try:
        check_applicable(task, hand)
    except XlhandError:
        return False
    return True


# -- success predicates on a trace -----------------------------------------------------------------------------
@dataclass
class Trace:
    """What happened, one row per control step: object position, wrist position, index finger contacts,
    finger extension (fraction of each finger's reach range, hand's finger order). Whoever moved the hand (the
    demonstrator or a policy), the trace alone decides success."""

    object_pos: np.ndarray  # (T, 3)
    wrist_pos: np.ndarray  # (T, 3)
    index_contact: np.ndarray  # (T,) bool
    hand_contact: np.ndarray  # (T,) bool
    extension: np.ndarray  # (T, F)
    fingers: list[str]
    rest_z: float


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for v in mask:
        run = run + 1 if v else 0
        best = max(best, run)
    return best


def lifted_steps(tr: Trace) -> int:
    """The longest run of steps with the object ``LIFT_HEIGHT`` above its rest and the wrist as far above the
    lowest point it had reached (where it grasped)."""
    lowest = np.minimum.accumulate(tr.wrist_pos[:, 2])
    up = (tr.object_pos[:, 2] - tr.rest_z >= LIFT_HEIGHT) & (tr.wrist_pos[:, 2] - lowest >= LIFT_HEIGHT)
    return _longest_run(up)


def succeeded(task: Task, tr: Trace) -> bool:
    """The task's physical success predicate on ``tr``."""
    need = int(round(LIFT_SECONDS * CONTROL_HZ))
    if task.success == "lift":
        return lifted_steps(tr) >= need
    if task.success == "release":
        tail = max(1, CONTROL_HZ // 2)
        down = abs(tr.object_pos[-1, 2] - tr.rest_z) < 0.01
        return lifted_steps(tr) >= need // 2 and down and not tr.hand_contact[-tail:].any()
    if task.success == "poke":
        moved = np.linalg.norm(tr.object_pos[-1, :2] - tr.object_pos[0, :2])
        return bool(moved >= POKE_DISTANCE and tr.index_contact.any())
    if task.success == "point":
        i = tr.fingers.index("index")
        others = [k for k in range(len(tr.fingers)) if k != i]
        ok = (tr.extension[:, i] >= POINT_EXTENDED) & np.all(tr.extension[:, others] <= POINT_FLEXED, axis=1)
        return _longest_run(ok) >= int(round(POINT_SECONDS * CONTROL_HZ))
    raise ValueError(task.success)
