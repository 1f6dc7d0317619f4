"""The safety layer: nothing outside the position, velocity and acceleration limits ever leaves it, whatever the
model sends (random jumps, far outside the limits, NaN, wrong sizes, silence); it reaches a steady target without
overshoot, holds on bad input and on the watchdog, stops on demand, and refuses a configuration that would
switch a check off."""

from __future__ import annotations

import numpy as np
import pytest

from xlhand import load_hand
from xlhand.errors import XlhandError
from xlhand.runtime.safety import SafetyLayer, SafetyLimits

DT = 0.05


def _limits(**overrides):
    return SafetyLimits.for_hand(load_hand("xhand"), overrides)


def _check_sequence(limits, start, commands):
    q = np.array([start, *commands])
    v = np.diff(q, axis=0) / DT
    a = np.diff(v, axis=0) / DT
    assert np.all(q >= limits.lower - 1e-12) and np.all(q <= limits.upper + 1e-12)
    assert np.all(np.abs(v) <= limits.velocity * (1 + 1e-9) + 1e-12)
    assert np.all(np.abs(a) <= limits.acceleration * (1 + 1e-6) + 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_nothing_outside_the_limits_leaves_the_layer_whatever_the_model_sends(seed):
    limits = _limits()
    rng = np.random.default_rng(seed)
    n = len(limits.lower)
    start = rng.uniform(limits.lower, limits.upper)
    layer = SafetyLayer(limits, DT, start)
    out = []
    span = limits.upper - limits.lower
    for k in range(600):
        kind = rng.integers(6)
        if kind == 0:
            target = rng.uniform(limits.lower - 2 * span, limits.upper + 2 * span)  # far outside
        elif kind == 1:
            target = rng.uniform(limits.lower, limits.upper)  # a jump anywhere
        elif kind == 2:
            target = np.where(rng.random(n) < 0.3, np.nan, rng.uniform(limits.lower, limits.upper))
        elif kind == 3:
            target = None  # the model is late
        elif kind == 4:
            target = rng.uniform(-1e9, 1e9, n)
        else:
            target = layer.q + rng.normal(0, 0.01, n)  # small steps
        out.append(layer.step(target, k * DT))
    _check_sequence(limits, layer_start(limits, start), out)
    assert layer.counts["position"] > 0 and layer.counts["non-finite"] > 0


def layer_start(limits, start):
    return np.clip(start, limits.lower, limits.upper)


def test_a_steady_target_is_reached_without_overshoot_and_held():
    limits = _limits()
    start = limits.lower.copy()
    target = limits.upper.copy()
    layer = SafetyLayer(limits, DT, start)
    out = [layer.step(target, k * DT) for k in range(200)]
    np.testing.assert_allclose(out[-1], target, atol=1e-9)
    assert np.all(np.array(out) <= target + 1e-12)  # monotone approach, no overshoot
    _check_sequence(limits, start, out)
    # a reachable target within limits needs no intervention, except braking harder than the jerk limit
    assert set(layer.counts) <= {"jerk"}


def test_bad_targets_hold_the_last_safe_command_and_are_logged():
    limits = _limits()
    mid = (limits.lower + limits.upper) / 2
    layer = SafetyLayer(limits, DT, mid)
    for k in range(5):
        layer.step(mid, k * DT)
    held = layer.q.copy()
    bad = mid.copy()
    bad[0] = np.nan
    assert np.array_equal(layer.step(bad, 5 * DT), held)
    assert np.array_equal(layer.step(np.zeros(3), 6 * DT), held)
    assert layer.counts["non-finite"] == 1 and layer.counts["shape"] == 1
    assert [e.reason for e in layer.log] == ["non-finite", "shape"]


def test_the_watchdog_holds_when_targets_stop_coming():
    limits = _limits(watchdog=0.2)
    layer = SafetyLayer(limits, DT, limits.lower)
    first = layer.step(limits.upper, 0.0)  # start moving
    positions = [layer.step(None, k * DT) for k in range(1, 40)]
    assert layer.counts["watchdog"] == 1
    _check_sequence(limits, limits.lower, [first, *positions])
    assert np.allclose(positions[-1], positions[-2])  # stopped, holding


def test_the_emergency_stop_brakes_within_limits_and_holds():
    limits = _limits()
    layer = SafetyLayer(limits, DT, limits.lower)
    out = [layer.step(limits.upper, k * DT) for k in range(6)]
    layer.stop(6 * DT)
    out += [layer.step(limits.upper, k * DT) for k in range(6, 60)]
    _check_sequence(limits, limits.lower, out)
    assert np.allclose(out[-1], out[-2]) and not np.allclose(out[-1], limits.upper)
    assert layer.counts["stop"] == 1


@pytest.mark.parametrize("key,value", [("velocity", 0), ("velocity", -1.0), ("acceleration", float("nan")),
                                       ("jerk", "fast"), ("margin", 0.7), ("watchdog", float("inf")),
                                       ("veloctiy", 1.0)])
def test_a_configuration_that_would_switch_a_check_off_is_refused(key, value):
    with pytest.raises(XlhandError, match=f"safety.{key}"):
        _limits(**{key: value})


def test_the_safety_table_of_hand_toml_sets_the_limits_and_a_bad_one_names_the_file(tmp_path):
    from conftest import TINY_TOML, write_tiny_hand

    good = write_tiny_hand(tmp_path / "good", toml=TINY_TOML.format(name="tiny") + "\n[safety]\nvelocity = 1.5\n")
    limits = SafetyLimits.for_hand(load_hand(str(good)))
    assert np.all(limits.velocity == 1.5)
    bad = write_tiny_hand(tmp_path / "bad", toml=TINY_TOML.format(name="tiny") + "\n[safety]\nvelocity = 0\n")
    with pytest.raises(XlhandError) as info:
        SafetyLimits.for_hand(load_hand(str(bad)))
    assert "hand.toml" in str(info.value) and "safety.velocity" in str(info.value)
