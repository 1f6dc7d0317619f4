"""The built-in ``sim`` driver: an in-process stand-in for hardware (limits, rate, latency, a record)."""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from xlhand.runtime.driver import DriverError, HandDriver, JointState

if TYPE_CHECKING:
    from xlhand.hand.model import Hand


@dataclass(frozen=True)
class SentCommand:
    """One command a :class:`SimDriver` received: when, what was asked, what was applied after clamping."""

    stamp: float
    requested: np.ndarray
    applied: np.ndarray
    clamped: bool


@dataclass(frozen=True)
class _Cycle:
    t0: float
    period: float
    latency: float


class SimDriver(HandDriver):
    """An in-process stand-in for hardware: it enforces limits, models rate and latency, and records commands.

    - **Limits**: commands outside the joint limits are clamped, not rejected (like a servo with position limits);
      :meth:`send` returns the clamped command and :attr:`sent` records both. NaN, infinite or wrongly shaped
      commands are refused with :class:`DriverError`.
    - **Rate**: the simulated hand runs a control cycle every ``1 / rate_hz`` seconds from :meth:`connect` and takes
      the latest command received by each tick; commands sent faster than that are superseded, never queued.
    - **Latency**: the joints reach a tick's command ``latency_s`` after the tick (ideal tracking, no dynamics), so
      :meth:`read_state` lags what was sent by between ``latency_s`` and ``latency_s + 1 / rate_hz``.
    - **Record**: :attr:`sent` lists every accepted command with its timestamp, in order.

    ``clock`` (seconds, default :func:`time.monotonic`) can be replaced by a fake clock in tests. Before any command
    takes effect the joints rest at ``initial_q`` (default: zero, clamped into the limits).
    """

    def __init__(self, hand: Hand, *, rate_hz: float | None = None, latency_s: float = 0.01,
                 clock: Callable[[], float] = time.monotonic, initial_q=None):
        super().__init__(hand)
        if rate_hz is not None:
            self.rate_hz = float(rate_hz)
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise DriverError(f"{hand.name}: rate_hz must be a positive number, got {self.rate_hz!r}")
        if not (math.isfinite(latency_s) and latency_s >= 0):
            raise DriverError(f"{hand.name}: latency_s must be zero or positive, got {latency_s!r}")
        self.latency_s = float(latency_s)
        self.clock = clock
        self.initial_q = self.limit(np.zeros(self.dof) if initial_q is None else initial_q)
        self.sent: list[SentCommand] = []
        self._stamps: list[float] = []
        self._cycle: _Cycle | None = None

    def connect(self) -> None:
        if not self.connected:
            self._cycle = _Cycle(self.clock(), 1.0 / self.rate_hz, self.latency_s)
            self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def send(self, q) -> np.ndarray:
        self.require_connected()
        requested = self.as_command(q)
        applied = self.limit(requested)
        stamp = self.clock()
        self.sent.append(SentCommand(stamp, requested, applied.copy(), bool(np.any(applied != requested))))
        self._stamps.append(stamp)
        return applied

    def read_state(self) -> JointState:
        self.require_connected()
        now = self.clock()
        return JointState(self.position_at(now), now)

    def position_at(self, t: float) -> np.ndarray:
        """Joint values ``(dof,)`` at time ``t`` on the driver's clock, from the commands sent so far."""
        c = self._cycle
        if c is None:
            return self.initial_q.copy()
        tick = math.floor((t - c.latency - c.t0) / c.period + 1e-9)
        if tick < 0:
            return self.initial_q.copy()
        i = bisect.bisect_right(self._stamps, c.t0 + tick * c.period + 1e-12)
        return (self.sent[i - 1].applied if i else self.initial_q).copy()
