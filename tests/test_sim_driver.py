"""The `mujoco` driver: the hand in physics through the `HandDriver` interface, registered like any plugin driver."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

import xlhand  # noqa: E402
from xlhand.registry import get_driver, list_drivers  # noqa: E402
from xlhand.runtime.driver import DriverError  # noqa: E402
from xlhand.sim.driver import MujocoDriver  # noqa: E402


@pytest.fixture
def hand():
    return xlhand.load_hand("inspire")


def test_registered_through_the_plugin_hook(hand):
    assert "mujoco" in list_drivers()
    driver = get_driver("mujoco", hand)
    assert isinstance(driver, MujocoDriver) and driver.rate_hz == 20.0 and not driver.connected


def test_tracks_commands_in_physics_and_clamps_them(hand):
    lo, hi = hand.lower.double().numpy(), hand.upper.double().numpy()
    target = lo + 0.6 * (hi - lo)
    with get_driver("mujoco", hand) as driver:
        start = driver.read_state()
        for k in range(20):  # one second at 20 Hz
            driver.send(target)
        state = driver.read_state()
        assert state.stamp == pytest.approx(start.stamp + 1.0, abs=1e-6)  # simulated time, 50 ms per send
        assert np.abs(state.q - target).max() < 0.02
        applied = driver.send(hi + 1.0)
        np.testing.assert_allclose(applied, hi)
        for _ in range(20):
            driver.send(hi + 1.0)
        q = driver.read_state().q
        assert np.all(q <= hi + 0.02) and np.abs(q - hi).max() < 0.05
    assert not driver.connected and driver.world is None


def test_refuses_bad_commands_and_needs_a_connection(hand):
    driver = get_driver("mujoco", hand)
    with pytest.raises(DriverError, match="not connected"):
        driver.send(np.zeros(hand.dof))
    with pytest.raises(DriverError, match="not connected"):
        driver.read_state()
    with driver:
        with pytest.raises(DriverError, match="non-finite"):
            driver.send([np.nan] + [0.0] * (hand.dof - 1))
        with pytest.raises(DriverError, match="joint values"):
            driver.send([0.0] * (hand.dof + 1))
    driver.disconnect()  # idempotent


def test_realtime_paces_sends_to_the_control_rate(hand):
    now = [10.0]
    slept = []

    def sleep(dt):
        slept.append(dt)
        now[0] += dt

    with MujocoDriver(hand, realtime=True, clock=lambda: now[0], sleep=sleep) as driver:
        for _ in range(3):
            driver.send(np.zeros(hand.dof))
    assert slept == pytest.approx([0.05, 0.05])  # the first send goes at once, then one every 50 ms
