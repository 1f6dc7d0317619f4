"""Physics speed: simulated seconds per wall second for a 6-DoF and a 16-DoF hand with one object, scripted
demonstrator episodes per minute, and camera frames per second; all on one core, in the same run.

- ``physics``: the hand (inspire, 6 DoF; paxini, 16 DoF) holds a posture just above a ball resting on the table,
  stepped at 20 Hz commands (25 physics steps of 2 ms each); the figure is simulated time over wall time. The
  baseline, measured in the same run, is the same model with the hand lifted 2 m clear of the table and the ball
  (no candidate contacts): the ratio says what the scene's collision checks cost.
- ``episodes``: scripted ``lift_ball`` episodes per minute for the 6-DoF hand, after the grasp for the object
  sizes has been planned (planning is timed apart: it is paid once per hand, task and size bucket).
- ``render``: frames per second of the 96x96 scene camera (MuJoCo's renderer, EGL offscreen, as ``sim demos``
  renders: no multisampling, no shadow pass), against the same camera with 4x multisampling and every effect on
  (``sim show``'s setting) as the baseline; the renderer is warmed before timing.
- ``demos``: ``sim demos`` end to end for one hand (inspire, all eight tasks, ``--demo-episodes`` a task, images
  and dataset writing included, grasp planning included: a first run), in one process and in one worker per core.

Targets (issue 16): physics at least 10x real time for the 16-DoF hand with one object; 500 episodes for one hand
in under 10 minutes (50 a minute).

    python benchmarks/sim.py [--seconds 5] [--episodes 20] [--runs 3] [--demo-episodes 8] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGET_REALTIME = 10.0
TARGET_EPISODES_PER_MIN = 50.0


def _physics(world, seconds: float, with_hand: bool) -> float:
    from xlhand.sim.tasks import BALL
    from xlhand.sim.world import CONTROL_HZ, wrist_rotation

    obj = BALL.sample(np.random.default_rng(0), 1.0)
    q = np.clip(np.zeros(world.hand.dof), world.lower, world.upper)
    pos = np.array([0.0, 0.0, 0.1 + world.info.length]) if with_hand else np.array([0.0, 0.0, 2.0])
    world.reset(q, pos, wrist_rotation(0.0), obj)
    steps = int(seconds * CONTROL_HZ)
    t0 = time.perf_counter()
    for _ in range(steps):
        world.step(q, pos)
    return steps / CONTROL_HZ / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="simulated seconds per physics run")
    ap.add_argument("--episodes", type=int, default=20, help="episodes per demonstrator run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--demo-episodes", type=int, default=8, help="sim demos episodes per task (0: skip)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from xlhand import load_hand
    from xlhand.sim.demonstrator import HandPlanner, run_episode
    from xlhand.sim.tasks import TASKS
    from xlhand.sim.world import World

    out: dict = {"machine": platform.processor() or platform.machine(), "runs": args.runs}
    for name in ("inspire", "paxini"):
        hand = load_hand(name)
        world = World(hand)
        with_hand, alone = [], []
        for _ in range(args.runs):  # interleaved: load affects both alike
            with_hand.append(_physics(world, args.seconds, True))
            alone.append(_physics(world, args.seconds, False))
        world.close()
        rt, base = statistics.median(with_hand), statistics.median(alone)
        out[f"physics_{name}"] = {"dof": hand.dof, "realtime_factor": rt, "baseline_no_hand_contact": base,
                                  "ratio_to_baseline": rt / base, "target": TARGET_REALTIME,
                                  "meets_target": rt >= TARGET_REALTIME}
        print(f"physics {name:8s} {hand.dof:2d} DoF: {rt:6.1f}x real time (the scene with the hand held clear of "
              f"the ball: {base:6.1f}x; ratio {rt / base:.2f}); target {TARGET_REALTIME:g}x: "
              f"{'met' if rt >= TARGET_REALTIME else 'MISSED'}", flush=True)

    hand = load_hand("inspire")
    world = World(hand, camera_size=(96, 96))
    planner = HandPlanner(hand, world)
    task = TASKS["lift_ball"]
    t0 = time.perf_counter()
    for seed in range(args.episodes):  # plans every size bucket these seeds meet
        run_episode(world, planner, task, seed)
    planning_and_run = time.perf_counter() - t0
    rates, wins = [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        for seed in range(args.episodes):
            wins += run_episode(world, planner, task, seed).success
        rates.append(args.episodes / (time.perf_counter() - t0) * 60)
    rate = statistics.median(rates)
    first_pass = args.episodes / planning_and_run * 60
    out["episodes_inspire_lift_ball"] = {"per_minute": rate, "first_pass_per_minute_with_planning": first_pass,
                                         "success": wins / (args.runs * args.episodes),
                                         "target": TARGET_EPISODES_PER_MIN}
    print(f"episodes inspire lift_ball: {rate:.0f}/min planned ({first_pass:.0f}/min on the first pass, planning "
          f"included); success {wins / (args.runs * args.episodes):.2f}; target {TARGET_EPISODES_PER_MIN:g}/min: "
          f"{'met' if rate >= TARGET_EPISODES_PER_MIN else 'MISSED'}", flush=True)

    world.close()
    fps = {}
    for name, aa in (("policy", False), ("antialiased", True)):
        w = World(hand, camera_size=(96, 96), antialias=aa)
        w.reset(np.clip(np.zeros(hand.dof), w.lower, w.upper), np.array([0.0, 0.0, 0.15]), np.eye(3), None)
        w.render()  # the renderer and its GL context are made on the first frame
        times = []
        for _ in range(args.runs * 100):
            t0 = time.perf_counter()
            w.render()
            times.append(time.perf_counter() - t0)
        w.close()
        fps[name] = 1.0 / statistics.median(times)
    out["render_fps_96"] = {"policy": fps["policy"], "baseline_antialiased": fps["antialiased"],
                            "ratio": fps["policy"] / fps["antialiased"]}
    print(f"render 96x96: {fps['policy']:.0f} frames/s ({fps['antialiased']:.0f} with 4x multisampling and "
          f"shadows; ratio {fps['policy'] / fps['antialiased']:.1f})", flush=True)

    if args.demo_episodes:
        import tempfile
        from pathlib import Path

        from xlhand.loading import load_space
        from xlhand.sim.demos import record
        from xlhand.sim.pool import default_workers

        space = load_space()
        tasks = list(TASKS.values())
        res = {}
        for workers in sorted({1, default_workers()}):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                rep = record(hand, tasks, args.demo_episodes, Path(tmp) / "inspire", space, workers=workers)
                dt = time.perf_counter() - t0
            n = sum(rep.added.values())
            res[workers] = {"episodes": n, "attempts": sum(rep.attempts.values()), "seconds": dt,
                            "per_minute": n / dt * 60}
            print(f"sim demos inspire, {workers} worker(s): {n} episodes ({res[workers]['attempts']} attempts) in "
                  f"{dt:.0f} s, planning included: {n / dt * 60:.0f}/min", flush=True)
        out["demos_inspire"] = res
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
