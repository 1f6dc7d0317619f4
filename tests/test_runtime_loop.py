"""The control loop on the `sim` driver: a policy's latent chunks decoded and streamed at 20 Hz through the safety
layer; a slow, failing or NaN-emitting policy is held, never passed on; the emergency stop brakes and closes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from xlhand import load_hand
from xlhand.loading import load_space
from xlhand.runtime.loop import ControlLoop
from xlhand.runtime.safety import SafetyLimits
from xlhand.runtime.sim import SimDriver


@pytest.fixture(scope="module")
def inspire():
    space = load_space()
    hand = load_hand("inspire")

    def decode(z):
        with torch.no_grad():
            return space.decode("inspire", torch.as_tensor(z, dtype=torch.float32)).double().numpy()

    def encode(q):
        with torch.no_grad():
            return space.encode("inspire", torch.as_tensor(q[None], dtype=torch.float32))[0][0].numpy()

    return hand, decode, encode, space.latent_dim


def _sent_within_limits(driver, limits, dt):
    q = np.array([c.requested for c in driver.sent])
    v = np.diff(q, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    assert np.all(q >= limits.lower - 1e-12) and np.all(q <= limits.upper + 1e-12)
    assert np.all(np.abs(v) <= limits.velocity * (1 + 1e-9) + 1e-12)
    assert np.all(np.abs(a[1:]) <= limits.acceleration * (1 + 1e-6) + 1e-9)


def test_chunks_stream_at_the_rate_through_the_safety_layer(inspire):
    hand, decode, encode, dim = inspire
    rng = np.random.default_rng(0)
    calls = []

    def policy(obs):
        calls.append(obs)
        time.sleep(0.05)  # a policy that takes a while: the next chunk is computed while this one plays
        return rng.normal(0, 1.0, (64, dim))

    driver = SimDriver(hand, latency_s=0.0)
    loop = ControlLoop(driver, policy, decode, encode=encode, execute=16, lead=4)
    rep = loop.run(3.0)
    assert rep.stopped_by == "seconds" and rep.steps == 60 and not driver.connected
    assert rep.chunks >= 3 and len(calls) >= 3 and calls[0].latent.shape == (dim,)
    _sent_within_limits(driver, loop.limits, loop.dt)
    assert rep.jitter_ms["p50"] < 25 and rep.record["command"].shape == (60, hand.dof)


def test_a_late_failing_or_nan_policy_is_held_and_reported(inspire):
    hand, decode, _, dim = inspire
    state = {"n": 0}

    def policy(obs):
        state["n"] += 1
        if state["n"] == 2:
            raise RuntimeError("the model crashed")
        if state["n"] == 3:
            return np.full((64, dim), np.nan)
        if state["n"] == 4:
            time.sleep(0.6)  # a stall longer than the watchdog
        return np.zeros((64, dim))

    driver = SimDriver(hand, latency_s=0.0)
    loop = ControlLoop(driver, policy, decode, execute=8, lead=2, limits=SafetyLimits.for_hand(hand, {"watchdog": 0.2}))
    rep = loop.run(3.0)
    assert any("the model crashed" in e for e in rep.policy_errors)
    assert rep.interventions.get("non-finite", 0) > 0 and rep.interventions.get("watchdog", 0) > 0
    _sent_within_limits(driver, loop.limits, loop.dt)


def test_the_emergency_stop_brakes_to_a_halt_and_closes_the_driver(inspire):
    hand, decode, _, dim = inspire
    far = decode(np.full((1, dim), 3.0))[0]

    def policy(obs):
        return np.tile(np.full(dim, 3.0), (64, 1))  # a chunk that drives the hand across its range

    driver = SimDriver(hand, latency_s=0.0)
    loop = ControlLoop(driver, policy, decode, execute=32, lead=4)
    threading.Timer(0.4, loop.stop).start()
    rep = loop.run(5.0)
    assert rep.stopped_by == "stop" and not driver.connected and rep.interventions.get("stop") == 1
    q = np.array([c.requested for c in driver.sent])
    assert np.allclose(q[-1], q[-2])  # halted
    assert not np.allclose(q[-1], np.clip(far, loop.limits.lower, loop.limits.upper))  # before reaching the target
    _sent_within_limits(driver, loop.limits, loop.dt)


def test_a_run_is_recorded_and_replayed_as_an_animation(inspire, tmp_path, capsys):
    import json as jsonlib

    from xlhand.cli.main import main
    from xlhand.runtime.record import read_record, write_record

    hand, decode, _, dim = inspire
    driver = SimDriver(hand, latency_s=0.0)
    loop = ControlLoop(driver, lambda obs: np.tile(np.linspace(-1, 1, dim), (64, 1)), decode, execute=16, lead=4)
    rep = loop.run(1.0)
    path = write_record(tmp_path / "run.npz", rep, hand, driver.rate_hz)
    rec = read_record(path)
    assert rec["hand"] == "inspire" and rec["command"].shape == (20, hand.dof)
    np.testing.assert_array_equal(rec["command"], rep.record["command"])
    with pytest.raises(SystemExit) as info:
        main(["render", "replay", str(path), "-o", str(tmp_path / "run.gif"), "--size", "48", "--every", "2",
              "--json"])
    out = jsonlib.loads(capsys.readouterr().out)
    assert info.value.code == 0 and out["frames"] == 10 and out["fps"] == 10
    assert (tmp_path / "run.gif").stat().st_size > 0
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SystemExit) as info:
        main(["render", "replay", str(tmp_path / "junk.npz"), "-o", str(tmp_path / "x.gif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and len(err) == 1 and "junk.npz" in err[0] and "not a run record" in err[0]
