"""The batched training step equals the objective written pair by pair, in value and in gradient."""

from __future__ import annotations

import pytest
import torch

import xlhand
from xlhand.hand.model import hand_from_spec, spec_for_urdf
from xlhand.latent.adapter import Adapter
from xlhand.latent.space import Space
from xlhand.loading import load_space
from xlhand.training.config import FitConfig
from xlhand.training.step import Step, pairwise_terms
from xlhand.training.data import fit_data

from conftest import FIXTURE_HANDS, require_shared

CFG = FitConfig(batch=48, templates=16, pool=96, pinch_probability=0.5)


def compare_step_with_pairwise(space: Space, trainable: list[str]) -> None:
    gen = torch.Generator().manual_seed(5)
    data = fit_data(space, trainable, CFG)
    active = data.active
    step = Step(space, trainable, data.samplers, data.pools, active, CFG.batch)
    batch = step.draw(gen)
    fused = step.objective(batch)
    fused["loss"].backward()

    for n in trainable:
        space.adapters[n].requires_grad_(True)
    ref = pairwise_terms(space, trainable, batch, active)
    ref_kl, ref_loss = ref["kl"], ref["loss"]
    ref_loss.backward()

    for key, want in (("rec", ref["rec"]), ("retarget", ref["retarget"]), ("kl", ref_kl), ("loss", ref_loss)):
        assert torch.allclose(fused[key], want, rtol=1e-5, atol=1e-9), (key, float(fused[key]), float(want))
    assert float(ref["retarget"].detach()) > 0 and float(ref["rec"].detach()) > 0
    grads = step.grads()
    assert len(grads) == sum(len(list(space.adapters[n].parameters())) for n in trainable)
    for param, g in grads:  # equal up to float rounding: within 1e-5 of the tensor's largest gradient
        scale = float(param.grad.abs().max())
        assert scale > 0 and float((g - param.grad).abs().max()) <= 1e-5 * scale
    frozen = [n for n in space.hands if n not in trainable]
    assert all(p.grad is None for n in frozen for p in space.adapters[n].parameters())


def test_pretraining_step_equals_the_pairwise_objective():
    hands = [xlhand.load_hand(n) for n in ("xhand", "ability", "inspire", "paxini")]
    space = Space.new(hands, seed=3)
    compare_step_with_pairwise(space, space.hands)


@pytest.mark.parametrize("urdf", ["allegro_hand/allegro_hand_right.urdf", "panda_gripper/panda_gripper_glb.urdf",
                                  "dclaw_gripper/dclaw_gripper.urdf"])
def test_onboarding_step_equals_the_pairwise_objective(urdf):
    path = require_shared(FIXTURE_HANDS / urdf)
    space = load_space()
    hand = hand_from_spec(spec_for_urdf(path))
    torch.manual_seed(0)
    space.adapters[hand.name] = Adapter(hand.dof, space.latent_dim, space.hidden)
    space.hands_by_name[hand.name] = hand
    compare_step_with_pairwise(space, [hand.name])


def test_a_step_with_two_trainable_hands_among_frozen_ones():
    space = load_space()
    hands = [space.hand(n) for n in space.hands]
    fresh = Space.new(hands[:2], seed=1)
    for n in fresh.hands:
        space.adapters[n] = fresh.adapters[n]
    compare_step_with_pairwise(space, list(fresh.hands))
