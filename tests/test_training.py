"""The batched training step equals the objective written pair by pair, in value and in gradient."""

from __future__ import annotations

import pytest
import torch

import xlhand
from xlhand.hand import hand_from_spec, spec_for_urdf
from xlhand.poses import pinch_templates
from xlhand.space import Adapter, Space, load_space
from xlhand.training import FitConfig, Sampler, Step, active_pairs, frozen_pools, pairwise_objective

from conftest import FIXTURE_HANDS, require_shared

CFG = FitConfig(batch=48, templates=16, pool=96, pinch_probability=0.5)


def compare_step_with_pairwise(space: Space, trainable: list[str]) -> None:
    gen = torch.Generator().manual_seed(5)
    samplers = {n: Sampler(space.hand(n), pinch_templates(space.hand(n), CFG.templates, gen), CFG)
                for n in space.hands}
    active = active_pairs(space, trainable)
    pools = frozen_pools(space, trainable, samplers, active, CFG.pool, gen)
    step = Step(space, trainable, samplers, pools, active, CFG.batch)
    batch = step.draw(gen)
    fused = step.objective(batch)
    fused["loss"].backward()

    for n in trainable:
        space.adapters[n].requires_grad_(True)
    latents, tips, targets = {}, {}, {}
    kl = []
    for i, n in enumerate(step.train):
        hand = space.hand(n)
        x = batch["x"][i, :, :hand.dof]
        mean, logvar = space.adapters[n].encode(x)
        kl.append(0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean())
        latents[n], targets[n], tips[n] = mean, x, hand.fingertips(hand.denormalize(x))
    for n in pools:
        latents[n], tips[n] = batch["latents"][n], batch["tips"][n].permute(2, 0, 1)
    ref = pairwise_objective(space, trainable, latents, targets, tips, active)
    ref_kl = torch.stack(kl).mean()
    loss = space.loss
    ref_loss = loss.rec * ref["rec"] + ref["retarget"] + loss.kl * ref_kl
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


def test_a_fit_gives_the_same_adapter_with_or_without_the_pool_thread(monkeypatch):
    """Onboarding runs the pool part (frozen hands' latents into the new hand) in a second thread where there
    are two cores; its gradient is computed apart and added either way, so the adapter is bit-for-bit the same."""
    from xlhand.space import fingerprint_tensors
    from xlhand.training import fit

    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("XLHAND_FIT_THREADS", threads)
        space = load_space()
        base = Space.new([space.hand("xhand")], seed=4)
        space.adapters["xhand2"] = base.adapters["xhand"]
        space.hands_by_name["xhand2"] = space.hand("xhand")
        before = torch.get_num_threads()
        fit(space, ["xhand2"], FitConfig(steps=6, batch=32, templates=8, pool=64))
        assert torch.get_num_threads() == before  # the worker restores the intra-op setting
        results.append(fingerprint_tensors(space.tensors(["xhand2"])))
    assert results[0] == results[1]


def test_a_bad_thread_setting_is_one_clear_error(monkeypatch):
    from xlhand.errors import XlhandError
    from xlhand.training import fit

    monkeypatch.setenv("XLHAND_FIT_THREADS", "two")
    space = load_space()
    base = Space.new([space.hand("inspire")], seed=4)
    space.adapters["inspire2"] = base.adapters["inspire"]
    space.hands_by_name["inspire2"] = space.hand("inspire")
    with pytest.raises(XlhandError, match="XLHAND_FIT_THREADS"):
        fit(space, ["inspire2"], FitConfig(steps=2, batch=16, templates=4, pool=32))
