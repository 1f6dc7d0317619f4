"""The safety layer between a model and a hand's driver: every command passes through it, always.

Each control period :meth:`SafetyLayer.step` turns the model's target into the command to send:

1. a target that is missing (the model or decoder is late: the watchdog), has the wrong size, or holds NaN or
   infinite values is replaced by the last safe command (hold);
2. the target is clamped to the joint limits shrunk by a margin;
3. the command moves towards it with velocity and acceleration bounded per joint, braking in time to stop at the
   target (and before the limits) without overshoot. The acceleration changes by at most the jerk limit while
   the command speeds up or follows the target; braking may need more, and then the acceleration limit wins and
   a "jerk" intervention is counted (a braking profile that plans the jerk ahead, as Ruckig does, is not built).

Anchors: LeRobot's ``max_relative_target`` clamps one step at a time; ros2_control's joint limiter saturates
position, velocity and acceleration; libfranka refuses motions above position, velocity, acceleration or jerk
limits. Every intervention is counted and logged with its reason. The configuration is validated: a limit that is
missing, zero, negative or NaN is an error, never a silently disabled check.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from xlhand.errors import XlhandError

# defaults per joint type: (velocity, acceleration, jerk); revolute in rad, prismatic in m
DEFAULTS = {"revolute": (3.0, 30.0, 600.0), "prismatic": (0.1, 1.0, 20.0)}
DEFAULT_MARGIN = 0.02  # of each joint's range, kept clear at both ends
DEFAULT_WATCHDOG = 0.25  # s without a fresh target before the layer holds
KEYS = ("margin", "velocity", "acceleration", "jerk", "watchdog")


def _positive(value, what: str, source) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise XlhandError(f"must be a number, not {value!r}", source, what)
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise XlhandError(f"must be a positive finite number, not {value!r} (a limit cannot be switched off)",
                          source, what)
    return v


@dataclass(frozen=True)
class SafetyLimits:
    """Per-joint limits ``(dof,)`` the layer enforces, in the hand's action order."""

    lower: np.ndarray  # position limits with the margin taken off
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    jerk: np.ndarray
    watchdog: float = DEFAULT_WATCHDOG

    @classmethod
    def for_hand(cls, hand, overrides: dict | None = None, source=None) -> SafetyLimits:
        """Defaults by joint type, with ``overrides`` validated: by default the ``[safety]`` table of the hand's
        ``hand.toml`` (``margin``, ``velocity``, ``acceleration``, ``jerk`` for every joint, ``watchdog`` in
        seconds)."""
        if overrides is None:
            spec = getattr(hand, "spec", None)
            overrides = dict(getattr(spec, "safety", {}) or {})
            source = source or getattr(spec, "path", None)
        overrides = dict(overrides)
        unknown = sorted(set(overrides) - set(KEYS))
        if unknown:
            raise XlhandError(f"unknown key (allowed: {', '.join(KEYS)})", source, f"safety.{unknown[0]}")
        vals = {k: _positive(v, f"safety.{k}", source) for k, v in overrides.items()}
        margin = vals.get("margin", DEFAULT_MARGIN)
        if margin >= 0.5:
            raise XlhandError(f"must be below 0.5 (a fraction of each joint's range), not {margin}", source,
                              "safety.margin")
        types = {j.name: j.type for j in hand.robot.joints}
        dyn = np.array([DEFAULTS["prismatic" if types.get(n) == "prismatic" else "revolute"]
                        for n in hand.joint_names], dtype=np.float64)
        for col, key in enumerate(("velocity", "acceleration", "jerk")):
            if key in vals:
                dyn[:, col] = vals[key]
        lo, hi = hand.lower.double().numpy(), hand.upper.double().numpy()
        pad = margin * (hi - lo)
        return cls(lo + pad, hi - pad, dyn[:, 0].copy(), dyn[:, 1].copy(), dyn[:, 2].copy(),
                   vals.get("watchdog", DEFAULT_WATCHDOG))

    def check(self) -> None:
        n = len(self.lower)
        for name in ("upper", "velocity", "acceleration", "jerk"):
            arr = getattr(self, name)
            if arr.shape != (n,) or not np.all(np.isfinite(arr)):
                raise XlhandError(f"safety limits: {name} must be {n} finite numbers")
        for name in ("velocity", "acceleration", "jerk"):
            if not np.all(getattr(self, name) > 0):
                raise XlhandError(f"safety limits: every {name} limit must be positive")
        if not np.all(self.upper > self.lower):
            raise XlhandError("safety limits: the margin leaves no range on some joint")
        if not (math.isfinite(self.watchdog) and self.watchdog > 0):
            raise XlhandError("safety limits: the watchdog must be a positive number of seconds")


@dataclass
class Intervention:
    time: float
    reason: str  # "watchdog" | "non-finite" | "shape" | "position" | "velocity" | "acceleration" | "jerk" | "stop"
    detail: str = ""


@dataclass
class SafetyLayer:
    """One hand's layer at a fixed period ``dt``; start it at the measured posture ``q0``."""

    limits: SafetyLimits
    dt: float
    q0: np.ndarray
    log: list[Intervention] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    max_log: int = 10_000

    def __post_init__(self):
        self.limits.check()
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise XlhandError(f"the control period must be positive, not {self.dt}")
        q0 = np.asarray(self.q0, dtype=np.float64).reshape(-1)
        if q0.shape != self.limits.lower.shape or not np.all(np.isfinite(q0)):
            raise XlhandError("the starting posture must be finite joint values, one per joint")
        self.q = np.clip(q0, self.limits.lower, self.limits.upper)
        self.v = np.zeros_like(self.q)
        self.a = np.zeros_like(self.q)
        self.target = self.q.copy()
        self.last_fresh = 0.0
        self.stopped = False
        self.starved = False  # the watchdog is holding

    def _note(self, now: float, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        if len(self.log) < self.max_log:
            self.log.append(Intervention(now, reason, detail))

    def stop(self, now: float, why: str = "emergency stop") -> None:
        """Come to a halt as fast as the limits allow and hold there, whatever the targets; only :meth:`resume`
        lifts it."""
        if not self.stopped:
            self._note(now, "stop", why)
        self.stopped = True

    def resume(self) -> None:
        self.stopped = False

    def step(self, target, now: float) -> np.ndarray:
        """The next command (``(dof,)``, within every limit) for a period ending ``dt`` from the last one;
        ``target`` is the model's joint target, or ``None`` when there is none this period."""
        L = self.limits
        if target is not None and not self.stopped:
            t = np.asarray(target, dtype=np.float64).reshape(-1)
            if t.shape != self.q.shape:
                self._note(now, "shape", f"{t.size} values for {self.q.size} joints")
            elif not np.all(np.isfinite(t)):
                self._note(now, "non-finite", f"joints {np.flatnonzero(~np.isfinite(t)).tolist()}")
            else:
                clamped = np.clip(t, L.lower, L.upper)
                if np.any(clamped != t):
                    self._note(now, "position", f"joints {np.flatnonzero(clamped != t).tolist()}")
                self.target = clamped
                self.last_fresh = now
        stale = now - self.last_fresh > L.watchdog
        if stale and not self.stopped and not self.starved:
            self._note(now, "watchdog", f"no target for {now - self.last_fresh:.3f} s")
        self.starved = stale
        if stale or self.stopped:
            self.target = self.q.copy()  # come to a halt where the hand is, within the limits
        return self._advance(now)

    def _advance(self, now: float) -> np.ndarray:
        """One step towards the target. The command's velocity and acceleration are its finite differences over
        ``dt``, so these are what a device measures. The velocity wanted is the fastest that can still stop at
        the target under the acceleration limit (and stop before the limits); the acceleration follows it within
        the jerk limit, unless braking needs more: then the acceleration limit wins and a "jerk" intervention is
        noted."""
        L, dt = self.limits, self.dt
        err = self.target - self.q
        v_want = np.sign(err) * np.minimum(_stopping_speed(np.abs(err), L.acceleration, dt), L.velocity)
        a_want = np.clip((v_want - self.v) / dt, -L.acceleration, L.acceleration)
        a = np.clip(a_want, self.a - L.jerk * dt, self.a + L.jerk * dt)
        # braking must stay possible: towards a limit, or towards the target once moving at it
        v_up = _stopping_speed(self.limits.upper - self.q, L.acceleration, dt)
        v_down = _stopping_speed(self.q - self.limits.lower, L.acceleration, dt)
        cap_hi = np.minimum(L.velocity, v_up)
        cap_lo = -np.minimum(L.velocity, v_down)
        toward = np.sign(err) * (self.v + a * dt) > np.abs(v_want) + 1e-12  # faster than stopping allows
        v = self.v + a * dt
        over = toward | (v > cap_hi) | (v < cap_lo)
        if np.any(over):
            v_ok = np.clip(np.where(toward, v_want, v), cap_lo, cap_hi)
            a_fix = np.clip((v_ok - self.v) / dt, -L.acceleration, L.acceleration)
            broke = over & (np.abs(a_fix - self.a) > L.jerk * dt + 1e-12)
            if np.any(broke):
                self._note(now, "jerk", f"braking on joints {np.flatnonzero(broke).tolist()}")
            a = np.where(over, a_fix, a)
            v = self.v + a * dt
        q = np.clip(self.q + v * dt, L.lower, L.upper)
        v = (q - self.q) / dt
        self.a = (v - self.v) / dt
        self.v, self.q = v, q
        return q.copy()


def _stopping_speed(distance: np.ndarray, accel: np.ndarray, dt: float) -> np.ndarray:
    """The largest speed from which braking at ``accel`` in steps of ``dt`` stops within ``distance`` (>= 0).
    From ``v`` the steps move ``dt * (v + (v - a dt) + ...)``, ``n + 1`` of them with ``n = floor(v / a dt)``:
    ``S(v) = dt (n + 1) (v - a dt n / 2)``, continuous and increasing; this inverts it exactly."""
    d = np.maximum(distance, 0.0)
    step = accel * dt * dt
    n = np.floor((-1 + np.sqrt(1 + 8 * d / step)) / 2)
    return d / (dt * (n + 1)) + accel * dt * n / 2
