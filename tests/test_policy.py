"""The latent-action policy: training on recorded demonstrations lowers the flow-matching loss, the file round-trips
and is bound to its space, bad files and words are one-line errors, an interrupted run resumes to the same
weights, and two torchrun processes train what one process trains."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

pytest.importorskip("mujoco")

from conftest import subprocess_env, xlhand_script  # noqa: E402

from xlhand.errors import XlhandError  # noqa: E402


@pytest.fixture(scope="module")
def demos_root(tmp_path_factory):
    from xlhand import load_hand
    from xlhand.loading import load_space
    from xlhand.sim.demos import record
    from xlhand.sim.tasks import get_task

    root = tmp_path_factory.mktemp("demos") / "inspire"
    record(load_hand("inspire"), [get_task("point_index"), get_task("poke_box")], 2, root, load_space(),
           image_size=(32, 32), workers=1)
    return root


def _train(root, out, steps, **kw):
    from xlhand.loading import load_space
    from xlhand.policy.train import TrainConfig, train

    cfg = TrainConfig(steps=steps, batch=8, warmup=2, seed=3, lr=kw.pop("lr", 3e-4),
                      checkpoint_every=kw.pop("checkpoint_every", 1000))
    return train([root], out, space_fingerprint=load_space().fingerprint, cfg=cfg, **kw)


def test_training_lowers_the_loss_and_the_policy_file_round_trips(demos_root, tmp_path):
    from xlhand.loading import load_space
    from xlhand.policy.io import load_policy
    from xlhand.policy.model import tokenize

    losses = []
    out = _train(demos_root, tmp_path / "p.safetensors", 120, lr=1e-3, on_step=lambda s, l: losses.append(l["loss"]))
    assert sum(losses[-20:]) / 20 < 0.7 * sum(losses[:10]) / 10
    model, meta = load_policy(out, space_fingerprint=load_space().fingerprint)
    assert meta["training"]["hands"] == ["inspire"] and meta["training"]["tasks"] == ["point_index", "poke_box"]
    assert model.config.image_size == 32 and "point" in model.config.vocab
    tok = tokenize(model.config, ["point with the index finger"])
    z = model.sample(torch.zeros(1, 32, 32, 3, dtype=torch.uint8), tok, torch.zeros(1, 41),
                     generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 64, 41) and torch.isfinite(z).all()  # 32 latent + 9 arm numbers a step
    # the normalisation statistics travel with the weights
    assert not torch.allclose(model.action_std, torch.ones(41))


def test_a_policy_refuses_another_space_and_a_truncated_file(demos_root, tmp_path):
    from xlhand.policy.io import load_policy

    out = _train(demos_root, tmp_path / "p.safetensors", 2)
    with pytest.raises(XlhandError, match="trained on the space"):
        load_policy(out, space_fingerprint="0" * 64)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(XlhandError, match="cut.safetensors"):
        load_policy(cut)


def test_words_outside_the_vocabulary_are_a_one_line_error():
    from xlhand.policy.model import PolicyConfig, tokenize

    config = PolicyConfig(vocab=("ball", "lift", "the"))
    assert tokenize(config, ["Lift the ball!"]).tolist()[0][:3] == [3, 4, 2]
    with pytest.raises(XlhandError, match="juggle"):
        tokenize(config, ["juggle the ball"])


def test_datasets_of_another_space_are_refused(demos_root, tmp_path):
    from xlhand.policy.train import TrainConfig, train

    with pytest.raises(XlhandError, match="another space|not 0000"):
        train([demos_root], tmp_path / "p.safetensors", space_fingerprint="0" * 64, cfg=TrainConfig(steps=1))


def test_an_interrupted_run_resumes_to_the_same_weights(demos_root, tmp_path):
    from safetensors.torch import load_file

    from xlhand.policy.train import checkpoint_path

    whole = _train(demos_root, tmp_path / "whole.safetensors", 12)
    out = tmp_path / "cut.safetensors"

    def stop_at_7(step, losses):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(demos_root, out, 12, checkpoint_every=4, on_step=stop_at_7)
    assert checkpoint_path(out).exists() and not out.exists()
    _train(demos_root, out, 12, checkpoint_every=4)
    assert not checkpoint_path(out).exists()
    a, b = load_file(str(whole)), load_file(str(out))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_two_torchrun_processes_train_what_one_process_trains(demos_root, tmp_path):
    from safetensors.torch import load_file

    args = ["policy", "train", "--data", str(demos_root), "--steps", "5", "--batch", "8", "--seed", "3", "--json"]
    one = tmp_path / "one.safetensors"
    two = tmp_path / "two.safetensors"
    env = subprocess_env(OMP_NUM_THREADS="1")
    subprocess.run([*xlhand_script(), *args, "-o", str(one)], check=True, env=env, capture_output=True,
                   timeout=300)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          *xlhand_script(), *args, "-o", str(two)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"processes": 2' in run.stdout
    a, b = load_file(str(one)), load_file(str(two))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_policy(demos_root, tmp_path_factory):
    return _train(demos_root, tmp_path_factory.mktemp("pol") / "p.safetensors", 3)


def test_a_closed_loop_episode_starts_at_home_and_keeps_every_command_in_limits(tiny_policy):
    """The policy drives the hand: commands within the joint limits, the wrist where the arm part puts the
    hand's anchor fingertips, the episode as long as the demonstrator's plan plus the slack."""
    import numpy as np

    from xlhand.policy.rollout import SLACK_SECONDS, PolicyController
    from xlhand.sim.demonstrator import HandPlanner, episode_seconds
    from xlhand.sim.tasks import get_task
    from xlhand.sim.world import CONTROL_HZ, World

    controller = PolicyController(str(tiny_policy), None, execute_steps=8)
    model, space = controller.load()
    hand = space.hand("inspire")
    world = World(hand, camera_size=(32, 32))
    try:
        planner = HandPlanner(hand, world)
        task = get_task("poke_box")
        ep = controller.episode_fn(hand)(world, planner, task, 5)
        assert len(ep.actions) == round((episode_seconds(task) + SLACK_SECONDS) * CONTROL_HZ)
        lo, hi = hand.lower.numpy(), hand.upper.numpy()
        assert np.all(ep.actions >= lo - 1e-6) and np.all(ep.actions <= hi + 1e-6)
        assert np.isfinite(ep.wrist_poses).all()
        # the same seed gives the same episode (the flow's noise is seeded by it)
        again = controller.episode_fn(hand)(world, planner, task, 5)
        np.testing.assert_allclose(again.actions, ep.actions, atol=1e-6)
    finally:
        world.close()


def test_policy_eval_refuses_bad_input_in_one_line(tiny_policy, tmp_path):
    env = subprocess_env(OMP_NUM_THREADS="1")

    def run(*args):
        return subprocess.run([*xlhand_script(), "policy", "eval", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_policy.read_bytes()[:1000])
    for args, needle in [
        (["--policy", str(cut)], "cut.safetensors"),
        (["--policy", str(tiny_policy), "--tasks", "juggle_balls", "--hands", "inspire"], "juggle_balls"),
        (["--policy", str(tiny_policy), "--hands", "nosuchhand"], "nosuchhand"),
        (["--policy", str(tiny_policy), "--episodes", "0"], "--episodes"),
        (["--bundle", str(tmp_path)], "config.json"),
    ]:
        r = run(*args)
        assert r.returncode != 0, args
        assert needle in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, \
            (args, r.stderr)


def test_a_bundle_with_a_policy_refuses_a_policy_of_another_space(tiny_policy, tmp_path):
    import json

    from xlhand.bundle.store import create_bundle
    from xlhand.loading import load_space
    from xlhand.policy.io import load_policy, save_policy

    bundle = tmp_path / "b"
    config = create_bundle(bundle, None, policy=tiny_policy)
    assert config["policy"] == "policy.safetensors" and (bundle / "policy.safetensors").is_file()
    assert "## Policy" in (bundle / "README.md").read_text()
    assert json.loads((bundle / "config.json").read_text())["policy_info"]["training"]["hands"] == ["inspire"]
    model, _ = load_policy(tiny_policy)
    other = tmp_path / "other.safetensors"
    save_policy(other, model, space_fingerprint="1" * 64, training={})
    with pytest.raises(XlhandError, match="trained on the space"):
        create_bundle(tmp_path / "c", None, policy=other)
    (bundle / "policy.safetensors").write_bytes(other.read_bytes())  # swapped behind the bundle's back
    r = subprocess.run([*xlhand_script(), "policy", "eval", "--bundle", str(bundle)], env=subprocess_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "trained on the space" in r.stderr and "Traceback" not in r.stderr
    assert load_space(bundle).fingerprint == load_space().fingerprint
