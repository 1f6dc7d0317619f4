"""Drivers: the `HandDriver` interface, the built-in `sim` driver, and the `register_drivers` registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import write_tiny_hand

import xlhand
from xlhand import registry
from xlhand.runtime.driver import DriverError, HandDriver, JointState
from xlhand.runtime.sim import SimDriver
from xlhand.registry import get_driver, list_drivers
from xlhand.plugins.hookspecs import hookimpl


class FakeClock:
    """Seconds that move only when told to."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture
def hand():
    return xlhand.load_hand("inspire")


def test_hand_driver_is_abstract(hand):
    with pytest.raises(TypeError):
        HandDriver(hand)


def test_sim_declares_rate_and_limits(hand):
    driver = get_driver("sim", hand)
    assert isinstance(driver, SimDriver) and driver.rate_hz == 20.0
    assert driver.joint_names == hand.joint_names
    np.testing.assert_array_equal(driver.lower, hand.lower.double().numpy())
    np.testing.assert_array_equal(driver.upper, hand.upper.double().numpy())
    assert get_driver("sim", hand, rate_hz=50).rate_hz == 50.0
    assert SimDriver.rate_hz == 20.0  # an instance's rate does not leak into the class


def test_sim_clamps_out_of_limit_commands_and_records_them(hand):
    clock = FakeClock()
    with get_driver("sim", hand, clock=clock) as driver:
        inside = ((hand.lower + hand.upper) / 2).double()
        outside = inside.clone()
        outside[0] = hand.upper[0] + 1.0
        outside[1] = hand.lower[1] - 1.0
        np.testing.assert_array_equal(driver.send(inside), inside.numpy())
        clock.advance(0.05)
        applied = driver.send(outside)
    expected = outside.numpy().copy()
    expected[0], expected[1] = hand.upper[0], hand.lower[1]
    np.testing.assert_allclose(applied, expected)
    assert [(c.stamp, c.clamped) for c in driver.sent] == [(100.0, False), (100.05, True)]
    np.testing.assert_array_equal(driver.sent[1].requested, outside.numpy())
    np.testing.assert_allclose(driver.sent[1].applied, expected)


@pytest.mark.parametrize("command, problem", [
    (lambda dof: [float("nan")] + [0.0] * (dof - 1), "refused a command with non-finite values for "),
    (lambda dof: [0.0] * (dof - 1) + [math.inf], "refused a command with non-finite values for "),
    (lambda dof: [0.0] * (dof + 1), "a command has 6 joint values, got 7"),
    (lambda dof: "not numbers", "a command must be 6 numbers"),
])
def test_sim_refuses_bad_commands(hand, command, problem):
    with get_driver("sim", hand) as driver:
        with pytest.raises(DriverError) as err:
            driver.send(command(hand.dof))
        assert driver.sent == []
    assert str(err.value).startswith(f"inspire: {problem}") and "\n" not in str(err.value)


def test_sim_needs_a_connection(hand):
    driver = get_driver("sim", hand)
    for call in (lambda: driver.send(np.zeros(hand.dof)), driver.read_state):
        with pytest.raises(DriverError, match="the SimDriver is not connected; call connect()"):
            call()
    with driver:
        assert driver.connected
        driver.read_state()
    assert not driver.connected
    with pytest.raises(DriverError):
        driver.read_state()


def test_sim_models_rate_and_latency(hand):
    """20 Hz cycle from connect(), 30 ms latency; commands faster than the cycle are superseded."""
    clock = FakeClock(10.0)
    driver = get_driver("sim", hand, rate_hz=20, latency_s=0.03, clock=clock)
    rest = driver.initial_q
    a, b, c = (hand.lower + f * (hand.upper - hand.lower) for f in (0.25, 0.5, 0.75))
    with driver:
        driver.send(a)  # t = 0: taken by tick 0 (t = 0), reached at t = 0.03
        clock.advance(0.01)
        driver.send(b)  # t = 0.01 and
        clock.advance(0.01)
        driver.send(c)  # t = 0.02: tick 1 (t = 0.05) takes only the latest, c, reached at t = 0.08
        seen = {}
        for t in (0.0, 0.029, 0.03, 0.079, 0.08, 0.2):
            clock.t = 10.0 + t
            state = driver.read_state()
            assert isinstance(state, JointState) and state.stamp == clock.t
            seen[t] = state.q
    np.testing.assert_array_equal(seen[0.0], rest)
    np.testing.assert_array_equal(seen[0.029], rest)
    np.testing.assert_allclose(seen[0.03], a.numpy(), atol=1e-7)
    np.testing.assert_allclose(seen[0.079], a.numpy(), atol=1e-7)
    np.testing.assert_allclose(seen[0.08], c.numpy(), atol=1e-7)
    np.testing.assert_allclose(seen[0.2], c.numpy(), atol=1e-7)
    assert len(driver.sent) == 3  # b was recorded, though it never reached the joints


def test_sim_rest_pose_is_zero_clamped_into_the_limits(hand):
    driver = SimDriver(hand)
    np.testing.assert_array_equal(driver.initial_q, np.clip(0.0, driver.lower, driver.upper))
    with pytest.raises(DriverError, match="rate_hz must be a positive number"):
        SimDriver(hand, rate_hz=0)
    with pytest.raises(DriverError, match="latency_s must be zero or positive"):
        SimDriver(hand, latency_s=-1)


def test_get_driver_uses_the_hand_toml_driver(tmp_path):
    toml = write_tiny_hand(tmp_path / "ok")
    assert isinstance(get_driver(None, toml), SimDriver)
    text = toml.read_text().replace('description = "a two-finger test hand"', 'driver = "nope"')
    bad = write_tiny_hand(tmp_path / "bad", toml=text)
    with pytest.raises(DriverError) as err:
        get_driver(None, bad)
    assert str(err.value) == f"{bad}: driver: no driver named 'nope' is registered (registered: mujoco, sim)"


def test_get_driver_unknown_name():
    with pytest.raises(DriverError, match=r"^no driver named 'nope' is registered \(registered: mujoco, sim\)$"):
        get_driver("nope", "inspire")


# ---------------------------------------------------------------------------------------------------------------
# register_drivers


class Recorder(HandDriver):
    """A minimal third-party driver."""

    rate_hz = 100.0

    def connect(self):
        self.q = self.limit(np.zeros(self.dof))
        self.connected = True

    def read_state(self):
        self.require_connected()
        return JointState(self.q.copy(), 0.0)

    def send(self, q):
        self.require_connected()
        self.q = self.limit(q)
        return self.q

    def disconnect(self):
        self.connected = False


class RecorderPlugin:
    @hookimpl
    def register_drivers(self, register):
        register("recorder", Recorder)


class BadDriversPlugin:
    @hookimpl
    def register_drivers(self, register):
        register("sim", Recorder)  # taken by the built-in
        register("Bad Name", Recorder)
        register("not-callable", 42)
        register("not-a-driver", lambda hand: object())
        register("explodes", lambda hand: 1 / 0)


class RaisingPlugin:
    @hookimpl
    def register_drivers(self, register):
        raise RuntimeError("driver discovery failed")


def test_register_drivers_adds_a_driver(fresh_plugins, hand):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(RecorderPlugin(), name="recorder-plugin")
    assert list_drivers() == ["mujoco", "recorder", "sim"]
    with get_driver("recorder", hand) as driver:
        np.testing.assert_allclose(driver.send(torch.full((hand.dof,), 99.0)), hand.upper.double().numpy())
        np.testing.assert_allclose(driver.read_state().q, hand.upper.double().numpy())
    rows = {r["name"]: r for r in registry.plugin_report()}
    assert rows["recorder-plugin"]["drivers"] == ["recorder"] and rows["recorder-plugin"]["errors"] == []
    assert rows["recorder-plugin"]["hooks"] == ["register_drivers"]
    assert rows["xlhand.plugins.sim_driver"]["drivers"] == ["sim"]


def test_register_drivers_problems_are_reported_not_raised(fresh_plugins, hand):
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(BadDriversPlugin(), name="bad-drivers")
    fresh_plugins.pm.register(RaisingPlugin(), name="raising-drivers")
    fresh_plugins.pm.register(RecorderPlugin(), name="recorder-plugin")
    assert list_drivers() == ["explodes", "mujoco", "not-a-driver", "recorder", "sim"]
    rows = {r["name"]: r for r in registry.plugin_report()}
    assert rows["bad-drivers"]["errors"] == [
        "duplicate driver name 'sim' (already registered by xlhand.plugins.sim_driver)",
        "invalid driver name 'Bad Name'",
        "driver 'not-callable': the factory 42 is not callable",
    ]
    assert rows["raising-drivers"]["errors"] == ["register_drivers raised RuntimeError: driver discovery failed"]
    assert isinstance(get_driver("sim", hand), SimDriver)  # the built-in is untouched
    assert isinstance(get_driver("recorder", hand), Recorder)  # plugins after the raising one still count
    with pytest.raises(DriverError, match=r"driver 'not-a-driver' \(plugin bad-drivers\) returned object, "
                                          r"not a HandDriver"):
        get_driver("not-a-driver", hand)
    with pytest.raises(DriverError, match=r"driver 'explodes' \(plugin bad-drivers\) failed to start for inspire: "
                                          r"ZeroDivisionError"):
        get_driver("explodes", hand)
    with pytest.raises(DriverError, match="some plugins failed, see `xlhand plugins`"):
        get_driver("nope", hand)
