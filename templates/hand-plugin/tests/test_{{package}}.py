"""Smoke test: the installed package registers `{{name}}` with xlhand through its entry point."""

import pytest
import torch

import xlhand
from xlhand import registry
from xlhand import get_driver
from xlhand.plugins import manager

NAME = "{{name}}"


@pytest.fixture(autouse=True)
def only_this_plugin(monkeypatch):
    """Load this package's plugin and no other installed one."""
    monkeypatch.setenv("XLHAND_LOAD_PLUGINS", NAME)
    manager.reset()
    registry.reset()
    yield
    manager.reset()
    registry.reset()


def test_hand_is_registered_by_this_plugin():
    entry = registry.registry().hands[NAME]
    assert entry.plugin == NAME
    assert registry.registry().errors == {}


def test_fingertips():
    hand = xlhand.load_hand(NAME)
    assert hand.dof == {{dof}}
    assert hand.fingers == {{fingers}}
    q = hand.sample(64, generator=torch.Generator().manual_seed(0))
    tips = hand.fingertips(q)
    assert tips.shape == (64, len(hand.fingers), 3)
    assert torch.isfinite(tips).all()
    assert tips.norm(dim=-1).max() < 1.0  # metres: a hand, not a crane


def test_driver_round_trip():
    hand = xlhand.load_hand(NAME)
    target = (hand.lower + hand.upper) / 2
    with get_driver(hand.spec.driver, hand) as driver:
        applied = driver.send(target)
        assert applied.shape == (hand.dof,)
