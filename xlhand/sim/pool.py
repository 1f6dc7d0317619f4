"""Scripted episodes in batches of jobs, in this process or in worker processes (one per core).

A job is a run of seeded episodes of one hand and task, by the scripted demonstrator or by a ``controller``: a
picklable object whose ``episode_fn(hand)`` gives ``fn(world, planner, task, seed, render) -> Episode`` in the
worker (a policy, see ``xlhand.policy.rollout.PolicyController``). Each worker builds a hand's world and planner the first
time it takes one of its jobs and keeps them (planning is cached per hand, task and size bucket), and sends every
episode back as it finishes, so the caller writes or counts results while the others run. Workers are spawned, not
forked: EGL contexts and torch's thread pools do not survive a fork.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import queue
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from xlhand.errors import XlhandError
from xlhand.hand.model import Hand
from xlhand.sim.demonstrator import Episode, HandPlanner, run_episode
from xlhand.sim.tasks import Task, applicable
from xlhand.sim.world import World


@dataclass(frozen=True)
class Job:
    hand: int  # index into the pool's hands
    task: Task
    seed: int  # first seed
    budget: int  # attempts at most
    wanted: int | None = None  # stop after this many successes (None: run the whole budget)


class _Worlds:
    """Worlds and planners per hand, built when first needed."""

    def __init__(self, hands: list[Hand], render: bool, image_size: tuple[int, int], controller=None):
        self.hands, self.render, self.image_size, self.controller = hands, render, image_size, controller
        self.built: dict[int, tuple[World, HandPlanner, object]] = {}

    def get(self, i: int) -> tuple[World, HandPlanner, object]:
        if i not in self.built:
            world = World(self.hands[i], camera_size=self.image_size)
            fn = run_episode if self.controller is None else self.controller.episode_fn(self.hands[i])
            self.built[i] = (world, HandPlanner(self.hands[i], world), fn)
        return self.built[i]

    def close(self) -> None:
        for world, _, _ in self.built.values():
            world.close()
        self.built.clear()


def attempts(worlds: _Worlds, job: Job) -> Iterator[Episode]:
    world, planner, episode = worlds.get(job.hand)
    won = 0
    for k in range(job.budget):
        if job.wanted is not None and won >= job.wanted:
            return
        ep = episode(world, planner, job.task, job.seed + k, render=worlds.render)
        won += ep.success
        yield ep if ep.success or ep.images is None else dataclasses.replace(ep, images=None)


def _worker(hands, render, image_size, controller, jobs, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    torch.set_num_threads(1)
    worlds = _Worlds(hands, render, image_size, controller)
    k = -1
    try:
        while (item := jobs.get()) is not None:
            k, job = item
            for ep in attempts(worlds, job):
                results.put(("episode", k, ep))
            results.put(("done", k, None))
    except Exception as exc:  # noqa: BLE001 - the parent reports it in one line
        results.put(("error", k, f"{type(exc).__name__}: {exc}"))
    finally:
        worlds.close()


def run_jobs(hands: list[Hand], jobs: list[Job], *, workers: int = 1, render: bool = False,
             image_size: tuple[int, int] = (96, 96), controller=None) -> Iterator[tuple[int, Episode]]:
    """``(job index, episode)`` for every attempt of ``jobs``; with ``workers > 1`` in that many processes, jobs
    handed out one at a time (so episodes of different jobs interleave, each job's in seed order)."""
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        worlds = _Worlds(hands, render, image_size, controller)
        try:
            for k, job in enumerate(jobs):
                for ep in attempts(worlds, job):
                    yield k, ep
        finally:
            worlds.close()
        return
    ctx = mp.get_context("spawn")
    q_jobs, q_results = ctx.Queue(), ctx.Queue()
    for item in enumerate(jobs):
        q_jobs.put(item)
    procs = [ctx.Process(target=_worker, args=(hands, render, image_size, controller, q_jobs, q_results), daemon=True)
             for _ in range(workers)]
    for p in procs:
        q_jobs.put(None)
        p.start()
    try:
        left = len(jobs)
        while left:
            try:
                kind, k, payload = q_results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise XlhandError("the simulation workers stopped before finishing their jobs") from None
                continue
            if kind == "error":
                job = jobs[k] if k >= 0 else None
                where = f" ({hands[job.hand].name} {job.task.name})" if job else ""
                raise XlhandError(f"a simulation worker failed{where}: {payload}")
            if kind == "done":
                left -= 1
            else:
                yield k, payload
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


def success_table(hands: list[Hand], tasks: list[Task], episodes: int, *, seed: int = 0, workers: int = 1,
                  progress=None, controller=None,
                  image_size: tuple[int, int] = (96, 96)) -> dict[str, dict[str, float | None]]:
    """Success rate per hand and task over ``episodes`` episodes with seeds ``seed..`` (``None``: not
    applicable); one job per cell; by the demonstrator, or by ``controller`` (see :func:`run_jobs`)."""
    cells = [(h, t) for h, hand in enumerate(hands) for t in tasks if applicable(t, hand)]
    jobs = [Job(h, t, seed, episodes) for h, t in cells]
    wins = [0] * len(jobs)
    for k, ep in run_jobs(hands, jobs, workers=workers, controller=controller, image_size=image_size):
        wins[k] += ep.success
        if progress is not None:
            progress()
    table: dict[str, dict[str, float | None]] = {hand.name: {t.name: None for t in tasks} for hand in hands}
    for (h, t), w in zip(cells, wins):
        table[hands[h].name][t.name] = w / episodes
    return table


def default_workers() -> int:
    """One worker per core this process may use."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
