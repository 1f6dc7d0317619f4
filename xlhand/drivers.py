"""Hand drivers: the :class:`HandDriver` interface, the built-in :class:`SimDriver`, and the driver registry.

A driver moves one hand. ``q`` is always the hand's actuated joints in :attr:`Hand.joint_names` order, radians
(revolute) or metres (prismatic), as a ``(dof,)`` array. Plugins add drivers through the ``register_drivers`` hook
(``register(name, factory)``, ``factory(hand) -> HandDriver``); ``hand.toml``'s ``driver`` names one and
:func:`get_driver` resolves it. Writing a driver: ``docs/plugins.md``.
"""

from __future__ import annotations

import abc
import bisect
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from .errors import XlhandError
from .handspec import NAME_RE

if TYPE_CHECKING:
    from .hand import Hand


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


# ---------------------------------------------------------------------------------------------------------------
# The registry: typed getters over the ``register_drivers`` hook (the only place that calls it)


DriverFactory = Callable[["Hand"], HandDriver]


@dataclass(frozen=True)
class RegisteredDriver:
    name: str
    factory: DriverFactory
    plugin: str


@dataclass
class DriverRegistry:
    drivers: dict[str, RegisteredDriver] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # plugin name -> problems


def driver_registry() -> DriverRegistry:
    """Collect every plugin's drivers. Problems (bad names, duplicates, a raising hook) are recorded per plugin."""
    from xlhand.plugins import manager

    manager.load_plugins()
    reg = DriverRegistry()
    current = {"plugin": ""}

    def register(name, factory) -> None:
        plugin = current["plugin"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            reg.errors.setdefault(plugin, []).append(f"invalid driver name {name!r}")
        elif not callable(factory):
            reg.errors.setdefault(plugin, []).append(f"driver {name!r}: the factory {factory!r} is not callable")
        elif name in reg.drivers:
            other = reg.drivers[name].plugin
            reg.errors.setdefault(plugin, []).append(f"duplicate driver name {name!r} (already registered by {other})")
        else:
            reg.drivers[name] = RegisteredDriver(name, factory, plugin)

    failures = manager.call_each("register_drivers", on_plugin=lambda name: current.update(plugin=name),
                                 register=register)
    for name, exc in failures.items():
        reg.errors.setdefault(name, []).append(f"register_drivers raised {type(exc).__name__}: {exc}")
    return reg


def list_drivers() -> list[str]:
    """Names of every registered driver, sorted."""
    return sorted(driver_registry().drivers)


def get_driver(name: str | None, hand: Hand | str, **options) -> HandDriver:
    """A new, unconnected driver ``name`` (``None``: the hand's ``hand.toml`` ``driver``) for ``hand``.

    ``options`` go to the driver's factory (``SimDriver`` takes ``rate_hz``, ``latency_s``, ``clock``).
    """
    from .registry import load_hand

    hand = load_hand(hand)
    from_spec = name is None
    name = hand.spec.driver if name is None else name
    reg = driver_registry()
    entry = reg.drivers.get(name)
    if entry is None:
        known = ", ".join(sorted(reg.drivers)) or "none"
        hint = "; some plugins failed, see `xlhand plugins`" if reg.errors else ""
        problem = f"no driver named {name!r} is registered (registered: {known}){hint}"
        if from_spec or name == hand.spec.driver:
            raise DriverError(problem, hand.spec.path or hand.spec.urdf, "driver" if hand.spec.path else None)
        raise DriverError(problem)
    try:
        driver = entry.factory(hand, **options)
    except XlhandError:
        raise
    except Exception as exc:
        raise DriverError(f"driver {name!r} (plugin {entry.plugin}) failed to start for {hand.name}: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(driver, HandDriver):
        raise DriverError(f"driver {name!r} (plugin {entry.plugin}) returned {type(driver).__name__}, "
                          "not a HandDriver")
    return driver
