"""``xlhand sim check``: does a hand behave in physics? Posture hold under gravity, mimic couplings, NaN, gains.

The hand hangs palm down on its fixed wrist, clear of the table, and is commanded its rest posture (zero clamped
into the limits) for ``seconds``. It passes when every joint stays within ``DRIFT_TOL`` of the command the whole
time (``DRIFT_TOL * PRISMATIC_PER_RAD`` metres for a slide), every mimic joint within ``MIMIC_TOL`` of its
coupling, and the state stays finite. Self-collisions at rest (hand geoms on bodies that are not parent and child
overlapping by more than ``SELF_TOL``) are reported, not failed: hand links never collide with each other in
xlhand's worlds, so an overlap costs nothing in physics, but it often points at a wrong mount or a wrong mesh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xlhand.errors import XlhandError

DRIFT_TOL = 0.01  # rad
PRISMATIC_PER_RAD = 0.04  # m of slide counted like one radian
MIMIC_TOL = 1e-3  # rad (or m)
SELF_TOL = 1e-3  # m of overlap between two hand geoms at rest that counts as a self-collision


@dataclass
class CheckReport:
    """What ``check_hand`` measured; ``error`` is set (one line) when the hand could not be built."""

    hand: str
    source: str
    passed: bool
    error: str | None = None
    dof: int = 0
    mimic_joints: int = 0
    seconds: float = 0.0
    drift: float = float("nan")  # max |q - command| over the run, rad (slides scaled by 1 / PRISMATIC_PER_RAD)
    worst_joint: str = ""
    mimic_error: float = 0.0
    finite: bool = True
    self_collisions: list[tuple[str, str, float]] = field(default_factory=list)  # (body, body, overlap m)
    realtime_factor: float = 0.0  # simulated seconds per wall second
    build_seconds: float = 0.0
    joints: list[dict] = field(default_factory=list)  # name, kp, force_limit, armature
    notes: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        if self.error:
            return [self.error]
        out = []
        if not self.finite:
            out.append("the simulation produced NaN or infinite values")
        if not self.drift <= DRIFT_TOL:
            out.append(f"joint {self.worst_joint} drifted {self.drift:.4f} rad (> {DRIFT_TOL})")
        if not self.mimic_error <= MIMIC_TOL:
            out.append(f"mimic coupling error {self.mimic_error:.2e} (> {MIMIC_TOL:g})")
        return out

    def to_dict(self) -> dict:
        return {"hand": self.hand, "source": self.source, "passed": self.passed, "error": self.error,
                "failures": self.failures(), "dof": self.dof, "mimic_joints": self.mimic_joints,
                "seconds": self.seconds, "drift": self.drift, "worst_joint": self.worst_joint,
                "mimic_error": self.mimic_error, "finite": self.finite,
                "self_collisions": [{"bodies": [a, b], "overlap": d} for a, b, d in self.self_collisions],
                "realtime_factor": self.realtime_factor, "build_seconds": self.build_seconds,
                "joints": self.joints, "notes": self.notes, "tolerances": {"drift": DRIFT_TOL, "mimic": MIMIC_TOL}}


def rest_posture(hand) -> np.ndarray:
    """Zero clamped into the limits: the posture the check holds (and the demonstrator's open hand)."""
    return np.clip(np.zeros(hand.dof), hand.lower.double().numpy(), hand.upper.double().numpy())


def check_hand(hand, seconds: float = 2.0, source: str = "") -> CheckReport:
    """Build ``hand`` in a world, hold its rest posture for ``seconds`` and measure (module docstring)."""
    from xlhand.sim.world import CONTROL_HZ, World, wrist_rotation

    t0 = time.perf_counter()
    try:
        world = World(hand)
    except XlhandError as exc:
        return CheckReport(hand.name, source or str(hand.urdf_path), False, error=str(exc), dof=hand.dof)
    build = time.perf_counter() - t0
    info = world.info
    try:
        q = rest_posture(hand)
        pos = np.array([0.0, 0.0, 0.1 + 1.2 * info.length])
        rot = wrist_rotation(0.0)
        world.reset(q, pos, rot, None)
        slide = np.array([j.type == "prismatic" for j in _actuated(hand)])
        per = np.where(slide, 1.0 / PRISMATIC_PER_RAD, 1.0)
        drift = np.zeros(hand.dof)
        mimic = 0.0
        finite = True
        t1 = time.perf_counter()
        steps = max(1, int(round(seconds * CONTROL_HZ)))
        for _ in range(steps):
            world.step(q, pos, rot)
            if not world.finite():
                finite = False
                break
            drift = np.maximum(drift, np.abs(world.q - q) * per)
            mimic = max(mimic, world.mimic_error())
        wall = time.perf_counter() - t1
        selfc = self_collisions(world, hand)
    finally:
        world.close()
    worst = int(np.argmax(drift)) if hand.dof else 0
    report = CheckReport(
        hand=hand.name, source=source or str(hand.urdf_path), passed=False, dof=hand.dof,
        mimic_joints=len(info.mimic), seconds=seconds, drift=float(drift.max()) if finite else float("nan"),
        worst_joint=hand.joint_names[worst] if hand.dof else "", mimic_error=float(mimic), finite=finite,
        self_collisions=selfc, realtime_factor=steps / CONTROL_HZ / max(wall, 1e-9), build_seconds=build,
        joints=[{"name": n, "kp": float(k), "force_limit": float(f), "armature": float(a)}
                for n, k, f, a in zip(hand.joint_names, info.kp, info.force_limit, info.armature)],
        notes=list(info.notes) + list(hand.notes))
    report.passed = not report.failures()
    return report


def check_path_or_name(target: str | Path, seconds: float = 2.0) -> CheckReport:
    """:func:`check_hand` on a registered hand, a hand.toml or a URDF; a hand that cannot load is a failed report
    with its one-line reason."""
    from xlhand.registry import load_hand

    try:
        hand = load_hand(target)
    except XlhandError as exc:
        return CheckReport(Path(str(target)).stem, str(target), False, error=str(exc))
    return check_hand(hand, seconds, source=str(target))


def _actuated(hand):
    joints = hand.robot.joint_by_name
    return [joints[n] for n in hand.joint_names]


def self_collisions(world, hand) -> list[tuple[str, str, float]]:
    """Hand geom pairs on bodies that are neither the same nor parent and child, overlapping by more than
    ``SELF_TOL`` in the current state: ``(body, body, overlap m)``, worst first, one entry per body pair."""
    import mujoco

    m, d = world.model, world.data
    mujoco.mj_forward(m, d)
    geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] in world.hand_bodies and m.geom_contype[g]]
    worst: dict[tuple[int, int], float] = {}
    fromto = np.zeros(6)
    for i, g1 in enumerate(geoms):
        b1 = m.geom_bodyid[g1]
        for g2 in geoms[i + 1:]:
            b2 = m.geom_bodyid[g2]
            if b1 == b2 or m.body_parentid[b1] == b2 or m.body_parentid[b2] == b1:
                continue
            dist = mujoco.mj_geomDistance(m, d, g1, g2, SELF_TOL, fromto)
            if dist < -SELF_TOL:
                key = (min(b1, b2), max(b1, b2))
                worst[key] = max(worst.get(key, 0.0), -dist)
    prefix = world.info.prefix
    name = lambda b: mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b).removeprefix(prefix)  # noqa: E731
    return sorted(((name(a), name(b), v) for (a, b), v in worst.items()), key=lambda t: -t[2])
