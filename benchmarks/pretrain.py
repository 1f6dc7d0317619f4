"""Pretraining speed: median time per step, and the total time of `xlhand pretrain` at default settings.

    python benchmarks/pretrain.py [--steps-sample 100] [--full] [--json FILE]

Without --full, the total is projected from the median step time plus the measured set-up (pinch templates);
with --full the default run is timed end to end (about the same, minutes). Baselines in the same run: one
step evaluated pair by pair (every source-target pair decoded and run through FK separately, each adapter on its
own: the naive loop the batched step replaces), and the batched step with glibc's default allocator settings
(``XLHAND_KEEP_MEMORY=0``, in a subprocess: see ``xlhand/_util/memory.py``), with minor page faults per step for
both (the allocator's effect, free of the machine's load). Target (issue 3): the default pretraining
takes 10 minutes or less on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import xlhand
from xlhand.training.pretrain import BUILTIN_HANDS, PRETRAIN_DEFAULTS, pretrain
from xlhand.latent.space import Space
from xlhand._util.optim import Adam
from xlhand.training.config import FitConfig
from xlhand.training.step import Step, pairwise_terms
from xlhand.training.loop import fit
from xlhand.training.data import fit_data
from xlhand._util.memory import keep_freed_memory

keep_freed_memory()  # as `xlhand pretrain` / `xlhand onboard` do (XLHAND_KEEP_MEMORY=0 turns it off)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def step_times(n: int) -> tuple[float, float, float]:
    """Median seconds per step, set-up seconds, and minor page faults per step (a figure that, unlike time,
    does not move with the machine's load)."""
    hands = [xlhand.load_hand(h) for h in BUILTIN_HANDS]
    space = Space.new(hands, seed=0)
    stamps, faults = [], []

    def on_step(s, l):
        stamps.append(time.perf_counter())
        faults.append(_minor_faults())

    t0 = time.perf_counter()
    fit(space, space.hands, replace(PRETRAIN_DEFAULTS, steps=n), on_step=on_step)
    setup = stamps[0] - t0 - (stamps[1] - stamps[0])
    return (statistics.median(b - a for a, b in zip(stamps, stamps[1:])), setup,
            (faults[-1] - faults[0]) / (len(faults) - 1))


def naive_step_time(space: Space, trainable: list[str], cfg: FitConfig, n: int) -> float:
    """Median seconds of a training step evaluated pair by pair (:func:`xlhand.training.pairwise_terms`: each
    adapter and each (source, target) pair on its own, the naive loop the batched step replaces), on batches drawn
    as :func:`fit` draws them."""
    gen = torch.Generator().manual_seed(0)
    data = fit_data(space, trainable, replace(cfg, templates=256))
    active = data.active
    drawer = Step(space, trainable, data.samplers, data.pools, active, cfg.batch)
    params = [p for n_ in trainable for p in space.adapters[n_].requires_grad_(True).parameters()]
    opt = Adam(params, lr=cfg.lr)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        terms = pairwise_terms(space, trainable, drawer.draw(gen), active)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    for n_ in trainable:
        space.adapters[n_].requires_grad_(False)
    return statistics.median(times[2:])


def step_time_without_kept_memory(n: int) -> tuple[float, float]:
    """The batched step's median seconds and page faults per step with the allocator left at glibc's defaults
    (a fresh process)."""
    code = ("import sys; sys.path.insert(0, %r); import pretrain as b; t, _, f = b.step_times(%d); print(t, f)"
            % (str(Path(__file__).parent), n))
    env = dict(os.environ, XLHAND_KEEP_MEMORY="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    t, f = out.stdout.strip().splitlines()[-1].split()
    return float(t), float(f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps-sample", type=int, default=100)
    ap.add_argument("--full", action="store_true", help="time the full default pretraining end to end")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default steps {PRETRAIN_DEFAULTS.steps}, "
          f"batch {PRETRAIN_DEFAULTS.batch}, hands {', '.join(BUILTIN_HANDS)}")
    plain, plain_faults = step_time_without_kept_memory(args.steps_sample)
    step, setup, faults = step_times(args.steps_sample)
    space = Space.new([xlhand.load_hand(h) for h in BUILTIN_HANDS], seed=0)
    naive = naive_step_time(space, space.hands, PRETRAIN_DEFAULTS, min(args.steps_sample, 20))
    projected = setup + step * PRETRAIN_DEFAULTS.steps
    result = {"median_step_s": step, "setup_s": setup, "naive_step_s": naive, "speedup": naive / step,
              "default_allocator_step_s": plain, "allocator_speedup": plain / step, "faults_per_step": faults,
              "default_allocator_faults_per_step": plain_faults, "projected_total_s": projected}
    print(f"median step {step * 1e3:.1f} ms (pair-by-pair baseline {naive * 1e3:.1f} ms, {naive / step:.2f}x; "
          f"default allocator {plain * 1e3:.1f} ms, {plain / step:.2f}x, {plain_faults:.0f} page faults a step "
          f"against {faults:.0f}); "
          f"set-up {setup:.1f} s; projected default run {projected:.0f} s ({projected / 60:.1f} min)")
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            pretrain(Path(tmp) / "space.safetensors")
            total = time.perf_counter() - t0
        result["full_total_s"] = total
        print(f"full default pretraining: {total:.0f} s ({total / 60:.1f} min); target <= 600 s: "
              f"{'OK' if total <= 600 else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
