"""The ``mujoco`` driver: the hand in physics, driven through the same interface as hardware.

Each :meth:`MujocoDriver.send` is one control period: the command is clamped into the limits, then the physics
runs ``1 / rate_hz`` seconds with the joint targets interpolated from the previous command (as in every xlhand
world). :meth:`~MujocoDriver.read_state` gives the measured joints, stamped with simulated time. With
``realtime=True`` sends are paced to the wall clock, like a servo bus; by default they run as fast as the CPU
allows. The world (table, object slot, camera) is :attr:`MujocoDriver.world` for tasks and pictures.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from xlhand.errors import XlhandError
from xlhand.runtime.driver import DriverError, HandDriver, JointState

if TYPE_CHECKING:
    from xlhand.hand.model import Hand
    from xlhand.sim.world import ObjectState, World


class MujocoDriver(HandDriver):
    """A simulated hand in MuJoCo. ``wrist_pos`` / ``wrist_rot``: where the wrist is held (default: palm down,
    clear of the table); ``obj``: an object on the table; ``initial_q``: the posture at connect (default: zero,
    clamped into the limits)."""

    def __init__(self, hand: Hand, *, realtime: bool = False, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, wrist_pos=None, wrist_rot=None,
                 obj: ObjectState | None = None, initial_q=None):
        from xlhand.sim.world import CONTROL_HZ

        super().__init__(hand)
        self.rate_hz = float(CONTROL_HZ)
        self.realtime = realtime
        self.clock, self.sleep = clock, sleep
        self.wrist_pos, self.wrist_rot, self.obj = wrist_pos, wrist_rot, obj
        self.initial_q = self.limit(np.zeros(self.dof) if initial_q is None else initial_q)
        self.world: World | None = None
        self._next = 0.0

    def connect(self) -> None:
        if self.connected:
            return
        try:
            from xlhand.sim.world import World, wrist_rotation
        except ImportError as exc:
            raise DriverError(f"{self.hand.name}: the mujoco driver needs the sim extra "
                              f"(pip install 'xlhand[sim]'): {exc}") from None
        try:
            self.world = World(self.hand)
        except XlhandError as exc:
            raise DriverError(f"{self.hand.name}: {exc}") from None
        pos = self.wrist_pos if self.wrist_pos is not None else [0.0, 0.0, 0.1 + 1.2 * self.world.info.length]
        rot = self.wrist_rot if self.wrist_rot is not None else wrist_rotation(0.0)
        self.world.reset(self.initial_q, pos, rot, self.obj)
        self._next = self.clock()
        self.connected = True

    def send(self, q) -> np.ndarray:
        self.require_connected()
        applied = self.limit(q)
        if self.realtime:
            wait = self._next - self.clock()
            if wait > 0:
                self.sleep(wait)
            self._next = max(self._next, self.clock()) + 1.0 / self.rate_hz
        self.world.step(applied)
        if not self.world.finite():
            raise DriverError(f"{self.hand.name}: the simulation became unstable (NaN); reconnect to reset it")
        return applied

    def read_state(self) -> JointState:
        self.require_connected()
        return JointState(self.world.q, float(self.world.data.time))

    def disconnect(self) -> None:
        if self.world is not None:
            self.world.close()
            self.world = None
        self.connected = False
