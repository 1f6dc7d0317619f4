"""The TCP driver and its device emulator on 127.0.0.1, and the 20-second soak: faults injected into the policy
and the connection, nothing unsafe reaches the device, every fault is logged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from xlhand import load_hand
from xlhand.runtime.driver import DriverError
from xlhand.runtime.safety import SafetyLimits
from xlhand.runtime.tcp import DeviceEmulator, TcpDriver

REPO = Path(__file__).resolve().parent.parent


def test_the_emulator_catches_unsafe_commands_and_the_driver_reconnects():
    hand = load_hand("inspire")
    limits = SafetyLimits.for_hand(hand)
    mid = (limits.lower + limits.upper) / 2
    with DeviceEmulator(hand.dof, limits, 0.05, q0=mid) as dev:
        with TcpDriver(hand, dev.address) as drv:
            np.testing.assert_allclose(drv.read_state().q, mid)
            drv.send(mid)
            assert not dev.violations
            drv.send(limits.upper)  # a jump no safety layer would pass: far above the velocity limit
            drv.read_state()
            assert any("velocity" in v for v in dev.violations)
            dev.drop_connection()
            drv.send(mid)
            np.testing.assert_allclose(drv.read_state().q, mid)  # reconnected, the command arrived
            assert drv.reconnects >= 1 and dev.connections >= 2 and drv.faults


def test_a_device_that_is_not_there_is_a_one_line_driver_error():
    hand = load_hand("inspire")
    import socket

    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    with pytest.raises(DriverError, match="cannot connect"):
        TcpDriver(hand, ("127.0.0.1", port)).connect()


def test_a_20_second_soak_with_faults_lets_nothing_unsafe_reach_the_device():
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    res = soak.soak(20.0, drop_every=6.0)
    assert res["violations"] == []
    assert res["stopped_by"] == "seconds" and res["driver_error"] is None and res["steps"] == 400
    assert all(n > 0 for n in res["injected"].values()), res["injected"]
    assert res["interventions"].get("non-finite", 0) > 0 and res["interventions"].get("position", 0) > 0
    assert res["reconnects"] >= 2 and len(res["driver_faults"]) >= res["reconnects"]
    assert res["commands_received"] >= 390  # at most the commands in flight at each drop are lost
