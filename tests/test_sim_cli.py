"""`xlhand sim check|show|eval|demos`: real episodes in MuJoCo, one-line errors, resumable recording."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mujoco")

from conftest import write_tiny_hand  # noqa: E402

from xlhand.cli.main import main  # noqa: E402


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for n in needles:
        assert n in lines[0], lines[0]


def test_check_reports_a_builtin_hand_as_json(capsys):
    code, out, _ = run(["sim", "check", "inspire", "--seconds", "0.5", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["passed"] and report["dof"] == 6 and report["mimic_joints"] > 0
    assert report["drift"] <= report["tolerances"]["drift"]


def test_check_of_a_file_that_is_no_hand_fails_in_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.urdf"
    bad.write_text("<robot name='x'><link name='a'/><joint name='j' type='revolute'>")
    code, out, _ = run(["sim", "check", str(bad)], capsys)
    assert code == 1 and "failed:" in out and "broken.urdf" in out


def test_an_unknown_task_is_a_one_line_error(tmp_path, capsys):
    code, _, err = run(["sim", "show", "inspire", "--task", "juggle", "-o", str(tmp_path / "x.gif")], capsys)
    assert code == 1
    one_line_error(err, "unknown task 'juggle'", "lift_ball")
    assert not (tmp_path / "x.gif").exists()


def test_a_task_the_hand_cannot_do_is_a_one_line_error(tmp_path, capsys):
    toml = write_tiny_hand(tmp_path / "tiny")  # a thumb and an index finger: no middle finger
    code, _, err = run(["sim", "show", str(toml), "--task", "pinch_cube_middle", "-o", str(tmp_path / "x.gif")],
                       capsys)
    assert code == 1
    one_line_error(err, "not applicable", "no middle finger")
    code, _, err = run(["sim", "eval", "--hand", str(toml), "--tasks", "pinch_cube_middle", "--episodes", "1"],
                       capsys)
    assert code == 1
    one_line_error(err, "not applicable")


def test_show_writes_an_animation_of_a_real_episode(tmp_path, capsys):
    gif = tmp_path / "point.gif"
    code, out, _ = run(["sim", "show", "inspire", "--task", "point_index", "-o", str(gif), "--size", "64",
                        "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["success"] and result["frames"] > 20
    import imageio.v3 as iio

    frames = iio.imread(gif, index=None)  # composited frames; still frames are merged by the writer
    assert 2 <= len(frames) <= result["frames"] and frames.shape[1:3] == (64, 64)
    assert max(np.abs(f.astype(int) - frames[0].astype(int)).mean() for f in frames) > 1.0  # the fingers moved


def test_show_refuses_an_output_it_cannot_write(tmp_path, capsys):
    code, _, err = run(["sim", "show", "inspire", "--task", "point_index", "-o", str(tmp_path / "x.png")], capsys)
    assert code == 1
    one_line_error(err, ".png", ".gif")


def test_eval_gives_the_success_table(capsys):
    code, out, _ = run(["sim", "eval", "--hand", "inspire", "--tasks", "point_index,poke_box", "--episodes", "2",
                        "--json"], capsys)
    table = json.loads(out)
    assert code == 0 and table["controller"] == "scripted"
    assert table["success"]["inspire"] == {"point_index": 1.0, "poke_box": 1.0}


def test_the_table_marks_tasks_a_hand_cannot_do_as_not_applicable(tmp_path):
    from xlhand import load_hand
    from xlhand.sim.pool import success_table
    from xlhand.sim.tasks import get_task

    tiny = load_hand(write_tiny_hand(tmp_path / "tiny"))
    table = success_table([tiny], [get_task("pinch_cube_middle"), get_task("lift_ball"), get_task("point_index")], 1)
    row = table["tiny"]
    assert row["pinch_cube_middle"] is None and row["lift_ball"] is None  # two fingers: no middle, no power grasp
    assert row["point_index"] in (0.0, 1.0)


def test_demos_resume_after_an_interrupt_and_lose_no_episode(tmp_path, monkeypatch):
    from xlhand import load_hand
    from xlhand.loading import load_space
    from xlhand.sim import demos
    from xlhand.sim.dataset import read_dataset
    from xlhand.sim.tasks import get_task

    hand, space, tasks = load_hand("inspire"), load_space(), [get_task("point_index"), get_task("poke_box")]
    root = tmp_path / "demos" / "inspire"
    seen = []

    def interrupt_after_two(task, ok):
        seen.append((task, ok))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demos.record(hand, tasks, 2, root, space, image_size=(32, 32), on_attempt=interrupt_after_two)
    data = read_dataset(root)
    assert len(data.episodes) == 2 and [e["seed"] for e in data.episodes] == [0, 1]
    before = data.frames(1)

    report = demos.record(hand, tasks, 2, root, space, image_size=(32, 32))
    assert report.added == {"point_index": 0, "poke_box": 2} and report.held == {"point_index": 2, "poke_box": 2}
    data = read_dataset(root)
    assert [(e["task"], e["seed"], e["success"]) for e in data.episodes] == [
        ("point_index", 0, True), ("point_index", 1, True), ("poke_box", 0, True), ("poke_box", 1, True)]
    after = data.frames(1)
    np.testing.assert_array_equal(before["action"], after["action"])  # the first run's episodes are untouched
    # latents are the space's encoder means of the recorded joints
    import torch

    mean, _ = space.encode("inspire", torch.as_tensor(after["observation.state"].copy()))
    np.testing.assert_allclose(after["observation.latent"], mean.numpy(), atol=1e-5)
    assert after["observation.images.front"].shape[1:] == (32, 32, 3)


def test_demos_refuse_a_hand_the_space_lacks(tmp_path, capsys):
    toml = write_tiny_hand(tmp_path / "tiny")
    code, _, err = run(["sim", "demos", "--hands", str(toml), "--tasks", "point_index", "--episodes", "1",
                        "-o", str(tmp_path / "out")], capsys)
    assert code == 1
    one_line_error(err, "'tiny' is not in this space")


def test_workers_give_the_same_table_and_the_same_episodes_as_one_process(tmp_path):
    from xlhand import load_hand
    from xlhand.loading import load_space
    from xlhand.sim import demos
    from xlhand.sim.dataset import read_dataset
    from xlhand.sim.pool import success_table
    from xlhand.sim.tasks import get_task

    hand, tasks = load_hand("inspire"), [get_task("point_index"), get_task("poke_box")]
    assert success_table([hand], tasks, 2, workers=2) == success_table([hand], tasks, 2, workers=1)
    space = load_space()
    seeds = {}
    for n in (1, 2):
        report = demos.record(hand, tasks, 2, tmp_path / f"w{n}", space, image_size=(32, 32), workers=n)
        assert report.held == {"point_index": 2, "poke_box": 2}
        data = read_dataset(tmp_path / f"w{n}")
        seeds[n] = sorted((e["task"], e["seed"]) for e in data.episodes)
        assert len(data.episodes) == 4
    assert seeds[1] == seeds[2]


def test_a_gripper_whose_zero_posture_is_closed_opens_to_pinch():
    """Panda's finger joints are 0 when closed: the demonstrator opens it (the spread of the grasping tips), plans
    the pinch on a fine enough grid for its small cube, and lifts the cube."""
    from conftest import require_shared

    from xlhand import load_hand
    from xlhand.sim.grasp import open_posture
    from xlhand.sim.pool import success_table
    from xlhand.sim.tasks import get_task

    panda = load_hand(str(require_shared() / "fixtures/hands/panda_gripper/panda_gripper_glb.urdf"))
    q = open_posture(panda, [0, 1])
    assert float(q.min()) > 0.5 * float(panda.upper.min())  # opened, not the closed zero
    table = success_table([panda], [get_task("pinch_cube_index")], 2)
    assert table[panda.name]["pinch_cube_index"] == 1.0


def test_a_hand_whose_curled_fingers_hang_below_the_index_pokes_with_the_palm_turned():
    """LEAP's curled fingers hang below its pointing index with the palm down; the poke turns the palm so that the
    rest of the hand clears the table, and the box moves."""
    from conftest import require_shared

    from xlhand import load_hand
    from xlhand.sim.demonstrator import HandPlanner
    from xlhand.sim.pool import success_table
    from xlhand.sim.tasks import get_task
    from xlhand.sim.world import World, wrist_rotation

    leap = load_hand(str(require_shared() / "fixtures/hands/leap_hand/leap_hand_right.urdf"))
    world = World(leap)
    try:
        assert not np.allclose(HandPlanner(leap, world).poke_rotation(0.01), wrist_rotation(0.0))
    finally:
        world.close()
    assert success_table([leap], [get_task("poke_box")], 2)[leap.name]["poke_box"] == 1.0


def test_pointing_is_not_applicable_to_a_gripper_whose_index_has_no_joint_of_its_own(capsys):
    from conftest import require_shared

    panda = require_shared() / "fixtures/hands/panda_gripper/panda_gripper_glb.urdf"
    code, _, err = run(["sim", "eval", "--hand", str(panda), "--tasks", "point_index", "--episodes", "1"], capsys)
    assert code == 1
    one_line_error(err, "not applicable", "no joint of its own")


def test_an_interrupt_with_workers_keeps_the_finished_episodes_and_stops_the_workers(tmp_path):
    import multiprocessing

    from xlhand import load_hand
    from xlhand.loading import load_space
    from xlhand.sim import demos
    from xlhand.sim.dataset import read_dataset
    from xlhand.sim.tasks import get_task

    hand, space, tasks = load_hand("inspire"), load_space(), [get_task("point_index"), get_task("poke_box")]
    root = tmp_path / "inspire"
    seen = []

    def interrupt_after_three(task, ok):
        seen.append(task)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demos.record(hand, tasks, 4, root, space, image_size=(32, 32), workers=2, on_attempt=interrupt_after_three)
    assert not multiprocessing.active_children()  # the workers were stopped
    data = read_dataset(root)
    assert len(data.episodes) == 3
    report = demos.record(hand, tasks, 4, root, space, image_size=(32, 32), workers=2)
    assert report.held == {"point_index": 4, "poke_box": 4} and sum(report.added.values()) == 5
    seeds = sorted((e["task"], e["seed"]) for e in read_dataset(root).episodes)
    assert seeds == [(t, s) for t in ("point_index", "poke_box") for s in range(4)]
