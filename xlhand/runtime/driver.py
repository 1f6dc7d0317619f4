"""The hand driver interface (:class:`HandDriver`), its joint state and its errors.

A driver moves one hand. ``q`` is always the hand's actuated joints in :attr:`Hand.joint_names` order, radians
(revolute) or metres (prismatic), as a ``(dof,)`` array. Plugins add drivers through the ``register_drivers`` hook
(``register(name, factory)``, ``factory(hand) -> HandDriver``); ``hand.toml``'s ``driver`` names one and
:func:`xlhand.registry.get_driver` resolves it. Writing a driver: ``docs/plugins.md``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xlhand.errors import XlhandError

if TYPE_CHECKING:
    from xlhand.hand.model import Hand


class DriverError(XlhandError):
    """A driver refused a command or could not be started (one line, like every :class:`XlhandError`)."""


@dataclass(frozen=True)
class JointState:
    """Measured joint values ``q (dof,)`` at ``stamp`` (seconds on the driver's clock)."""

    q: np.ndarray
    stamp: float


class HandDriver(abc.ABC):
    """A connection to one hand; use it as a context manager (``with driver: ...`` connects and disconnects).

    Declared by every driver: :attr:`rate_hz`, the command rate the hand expects, and the joint limits
    :attr:`lower` / :attr:`upper` ``(dof,)`` it enforces (the hand's, unless a subclass narrows them).
    """

    rate_hz: float = 20.0

    def __init__(self, hand: Hand):
        self.hand = hand
        self.joint_names = list(hand.joint_names)
        self.lower = hand.lower.double().numpy().copy()
        self.upper = hand.upper.double().numpy().copy()
        self.connected = False

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection; set :attr:`connected`."""

    @abc.abstractmethod
    def read_state(self) -> JointState:
        """The latest measured joint values."""

    @abc.abstractmethod
    def send(self, q) -> np.ndarray:
        """Command joint positions ``q (dof,)``; returns the command actually sent (after :meth:`limit`)."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Close the connection (idempotent); clear :attr:`connected`."""

    def as_command(self, q) -> np.ndarray:
        """``q`` (a sequence, numpy array or tensor) as a ``(dof,)`` float64 array; refuses a wrong shape and
        NaN or infinite values with :class:`DriverError`."""
        try:
            arr = np.asarray(q.detach().cpu() if hasattr(q, "detach") else q, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise DriverError(f"{self.hand.name}: a command must be {self.dof} numbers ({exc})") from None
        if arr.shape != (self.dof,):
            raise DriverError(f"{self.hand.name}: a command has {self.dof} joint values, got {arr.size}")
        if not np.all(np.isfinite(arr)):
            bad = [self.joint_names[i] for i in np.flatnonzero(~np.isfinite(arr))]
            raise DriverError(f"{self.hand.name}: refused a command with non-finite values for {', '.join(bad)}")
        return arr

    def limit(self, q) -> np.ndarray:
        """:meth:`as_command`, clamped into :attr:`lower` / :attr:`upper`."""
        return np.clip(self.as_command(q), self.lower, self.upper)

    def require_connected(self) -> None:
        if not self.connected:
            raise DriverError(f"{self.hand.name}: the {type(self).__name__} is not connected; call connect()")

    def __enter__(self) -> HandDriver:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.disconnect()
