"""The prebuilt policy that ships with the package: it is bound to the shipped space, a prebuilt bundle carries
it with a model card, and it uses its inputs (a blank camera costs success where the object's place decides the
grasp; another instruction gives another motion than the noise of the flow does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def prebuilt():
    from xlhand.policy.prebuilt import prebuilt_policy

    path = prebuilt_policy()
    assert path is not None, "the package ships xlhand/policy/weights/default.safetensors"
    return path


def test_the_prebuilt_policy_belongs_to_the_shipped_space_and_its_bundle_says_how_it_does(prebuilt, tmp_path):
    from xlhand.bundle.store import create_prebuilt_bundle
    from xlhand.loading import load_space
    from xlhand.policy.io import load_policy

    _, meta = load_policy(prebuilt, space_fingerprint=load_space().fingerprint)
    assert set(meta["training"]["hands"]) == {"inspire", "xhand", "ability", "paxini"}
    config = create_prebuilt_bundle(tmp_path / "b")
    assert config["policy"] == "policy.safetensors"
    card = (tmp_path / "b" / "README.md").read_text()
    assert "## Policy" in card and "Success in physics" in card and "| inspire |" in card


def test_another_instruction_gives_another_motion(prebuilt):
    from xlhand.loading import load_space
    from xlhand.policy.io import load_policy
    from xlhand.policy.rollout import HandRunner
    from xlhand.sim.demonstrator import HandPlanner
    from xlhand.sim.tasks import TASKS
    from xlhand.sim.world import World

    space = load_space()
    model, _ = load_policy(prebuilt, space_fingerprint=space.fingerprint)
    hand = space.hand("inspire")
    world = World(hand, camera_size=(model.config.image_size,) * 2)
    try:
        planner = HandPlanner(hand, world)
        q, pos, rot = planner.home()
        world.reset(q, pos, rot, TASKS["poke_box"].object.sample(np.random.default_rng(0), planner.scale))
        image, wrist = world.render(), world.wrist_pose()
        runner = HandRunner(model, space, hand)

        def plan(task, seed):
            qs, p, _ = runner.chunk(image, TASKS[task].instruction, world.q, wrist, torch.Generator().manual_seed(seed))
            return np.concatenate([qs, p], 1)

        same = np.abs(plan("poke_box", 0) - plan("poke_box", 1)).mean()
        other = np.abs(plan("poke_box", 0) - plan("point_index", 0)).mean()
        assert other > 3 * same, (other, same)
    finally:
        world.close()


def test_a_blank_camera_costs_success_where_the_object_decides_the_grasp(prebuilt):
    from xlhand.policy.rollout import PolicyController
    from xlhand.sim.pool import success_table
    from xlhand.sim.tasks import TASKS

    from xlhand.loading import load_space

    hand = load_space().hand("inspire")
    tasks = [TASKS["pinch_cube_index"], TASKS["lift_ball"]]
    seeing = success_table([hand], tasks, 6, seed=500, controller=PolicyController(str(prebuilt), None))
    blind = success_table([hand], tasks, 6, seed=500, controller=PolicyController(str(prebuilt), None, blind=True))
    mean = lambda t: sum(t["inspire"].values()) / len(tasks)  # noqa: E731
    assert mean(seeing) >= mean(blind) + 0.25, (seeing, blind)


def test_onboarding_into_a_new_bundle_gives_the_prebuilt_one_and_checks_the_hand_in_physics(prebuilt, tmp_path):
    import json
    import subprocess

    from conftest import REPO, subprocess_env, xlhand_script

    urdf = REPO / "examples/xlhand-tribot/xlhand_tribot/hand/tribot.urdf"
    bundle = tmp_path / "b"
    r = subprocess.run([*xlhand_script(), "onboard", str(urdf), "--bundle", str(bundle), "--steps", "20",
                        "--no-oracle", "--eval-episodes", "1", "-o", str(tmp_path / "t.safetensors")],
                       env=subprocess_env(), capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    config = json.loads((bundle / "config.json").read_text())
    assert config["policy"] == "policy.safetensors" and "tribot" in config["hands"]
    assert "policy success over 1 episodes" in r.stdout and "the policy never saw tribot act" in r.stdout
    gifs = sorted((tmp_path / "tribot-policy").glob("tribot_*.gif"))
    assert gifs and all(g.stat().st_size > 1000 for g in gifs)
