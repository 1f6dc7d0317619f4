"""Onboarding: wall time and quality against steps for 16-DoF hands, and leave-one-out against joint training.

    python benchmarks/onboard.py time        [--repeats 3] [--json FILE]   # default settings, median of 3
    python benchmarks/onboard.py steps       [--json FILE]                 # quality vs steps (Allegro)
    python benchmarks/onboard.py leave-one-out [--seeds 0,1,2] [--cache DIR] [--pretrain-steps N] [--json FILE]

`time` onboards Allegro and LEAP (bare URDFs from ../shared) into the shipped default space at default settings,
the quality report with its oracle included, and prints the median wall time next to the baseline measured in
the same run: retraining the whole space with the new hand at the default pretraining settings, projected from
its median step time (what adding a hand costs without onboarding). Target (issue 4): 60 s or less. It also
prints the median time of one onboarding step against the same objective evaluated pair by pair
(:func:`xlhand.training.pairwise_objective`, each adapter and hand on its own: the naive step).

`leave-one-out`: for each built-in hand, pretrain a space on the other three (default pretraining settings unless
--pretrain-steps), onboard the fourth at default settings, and compare its mean cross-hand errors against the
three (pinch distance and direction, random and pinch poses) with the same hand's errors in the shipped default
space, where it was trained jointly. Ratio = onboarded / jointly trained; target 1.15 or better. The ratio moves
with the onboarding seed (the new adapter's initial weights and samples; xhand's mean 1.20-1.28 over seeds 0-2),
so ``--seeds`` reports the median, and each seed's chosen initialisation. Each run also prints the issue's other
quality test, first-class membership: the onboarded hand's mean errors against the other three next to the mean
errors among those three, in the same space (the onboarding report's summary).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import xlhand
from xlhand.latent.metrics import evaluate, summarize
from xlhand.training.onboard import ONBOARD_DEFAULTS, new_adapter, onboard
from xlhand.training.pretrain import BUILTIN_HANDS, PRETRAIN_DEFAULTS, pretrain
from xlhand.latent.space import Space
from xlhand.training.loop import fit
from xlhand._util.memory import keep_freed_memory

keep_freed_memory()  # as `xlhand pretrain` / `xlhand onboard` do (XLHAND_KEEP_MEMORY=0 turns it off)

from pretrain import naive_step_time  # benchmarks/pretrain.py: the pair-by-pair step both benchmarks compare with

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "hands"
SIXTEEN_DOF = {"allegro": SHARED / "allegro_hand" / "allegro_hand_right.urdf",
               "leap": SHARED / "leap_hand" / "leap_hand_right.urdf"}


def need_shared() -> None:
    if not SHARED.exists():
        sys.exit(f"{SHARED} not found: the 16-DoF fixture hands live in ../shared")


def onboarding_step_times(urdf: Path, name: str, n: int = 60) -> tuple[float, float]:
    """Median seconds per onboarding step: xlhand's batched step (inside :func:`fit`) and the naive pair-by-pair
    step on the same hand, space and settings."""
    from xlhand.hand.model import hand_from_spec, spec_for_urdf

    def fresh():
        space = xlhand.load_space()
        hand = hand_from_spec(spec_for_urdf(urdf, name=name))
        space.adapters[name] = new_adapter(space, hand, 0, "default")
        space.hands_by_name[name] = hand
        return space

    space = fresh()
    stamps: list[float] = []
    fit(space, [name], replace(ONBOARD_DEFAULTS, steps=n), on_step=lambda s, l: stamps.append(time.perf_counter()))
    batched = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))

    return batched, naive_step_time(fresh(), [name], ONBOARD_DEFAULTS, n)


def bench_time(repeats: int) -> dict:
    need_shared()
    out: dict = {}
    batched, naive = onboarding_step_times(SIXTEEN_DOF["allegro"], "allegro")
    out["step"] = {"batched_s": batched, "pairwise_s": naive, "speedup": naive / batched}
    print(f"allegro onboarding step: {batched * 1e3:.1f} ms (pair by pair: {naive * 1e3:.1f} ms, "
          f"{naive / batched:.2f}x)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, urdf in SIXTEEN_DOF.items():
            times, reports = [], []
            for r in range(repeats):
                t0 = time.perf_counter()
                res = onboard(urdf, name=name, out=Path(tmp) / f"{name}{r}.safetensors")
                times.append(time.perf_counter() - t0)
                reports.append(res.report)
            # baseline: retraining a 5-hand space at default pretraining settings, projected from step time
            hands = [xlhand.load_hand(h) for h in BUILTIN_HANDS] + [res.hand]
            space = Space.new(hands, seed=0)
            stamps: list[float] = []
            fit(space, space.hands, replace(PRETRAIN_DEFAULTS, steps=25),
                on_step=lambda s, l: stamps.append(time.perf_counter()))
            step = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
            retrain = step * PRETRAIN_DEFAULTS.steps
            med = statistics.median(times)
            out[name] = {"dof": res.hand.dof, "times_s": times, "median_s": med, "retrain_projected_s": retrain,
                         "speedup_vs_retrain": retrain / med, "summary": reports[-1]["summary"],
                         "fit_s": reports[-1]["fit_seconds"]}
            print(f"{name} ({res.hand.dof} DoF): onboard median {med:.1f} s over {repeats} "
                  f"(runs {', '.join(f'{t:.1f}' for t in times)}; fit {reports[-1]['fit_seconds']} s); "
                  f"retraining a 5-hand space instead: ~{retrain:.0f} s ({retrain / med:.1f}x); "
                  f"target <= 60 s: {'OK' if med <= 60 else 'MISSED'}")
    return out


def bench_steps() -> dict:
    need_shared()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (1000, 2000, 4000, 8000):
            t0 = time.perf_counter()
            res = onboard(SIXTEEN_DOF["allegro"], name="allegro", out=Path(tmp) / f"a{steps}.safetensors",
                          steps=steps, oracle=False)
            wall = time.perf_counter() - t0
            s = res.report["summary"]
            out[steps] = {"wall_s": wall, "summary": s}
            print(f"steps {steps:5d}: {wall:6.1f} s  random {s['random']['new_dist_mm']:.2f} mm "
                  f"{s['random']['new_dir_deg']:.2f} deg  pinch {s['pinch']['new_dist_mm']:.2f} mm "
                  f"{s['pinch']['new_dir_deg']:.2f} deg  (existing pairs: random {s['random']['existing_dist_mm']:.2f} mm "
                  f"{s['random']['existing_dir_deg']:.2f} deg)")
    return out


def _mean_errors(result: dict, hand: str) -> dict:
    """Mean over the ordered pairs that involve ``hand`` (both directions), per pose kind."""
    hands = result["space"]["hands"]
    return summarize(result["transfer"], [(a, b) for a in hands for b in hands if a != b and hand in (a, b)])


def bench_leave_one_out(pretrain_steps: int | None, cache: str | None, seeds: list[int]) -> dict:
    """With several ``seeds`` each held-out hand is onboarded once per seed (the seed sets the new adapter's
    initial weights and its samples) and the median ratio is reported next to each seed's."""
    joint_space = xlhand.load_space()
    joint = evaluate(joint_space, list(BUILTIN_HANDS), seed=0, oracle=False)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for held in BUILTIN_HANDS:
            rest = [h for h in BUILTIN_HANDS if h != held]
            base = Path(cache or tmp) / f"without_{held}.safetensors"
            t0 = time.perf_counter()
            if not base.exists():  # pretraining is deterministic for a seed, so a cached space is the same space
                pretrain(base, hands=rest, steps=pretrain_steps)
            t1 = time.perf_counter()
            jointly = _mean_errors(joint, held)
            per_seed = {}
            for seed in seeds:
                t2 = time.perf_counter()
                res = onboard(held, space=base, out=Path(tmp) / f"{held}.safetensors", oracle=False, seed=seed)
                t3 = time.perf_counter()
                onboarded = _mean_errors(evaluate(res.space, list(BUILTIN_HANDS), seed=0, oracle=False), held)
                ratios = {f"{kind}_{m}": onboarded[kind][m] / jointly[kind][m]
                          for kind in onboarded for m in ("dist_mm", "dir_deg")}
                first_class = res.report["summary"]  # its pairs vs the pairs among the other three, same space
                per_seed[seed] = {"onboarded": onboarded, "ratios": ratios, "onboard_s": t3 - t2,
                                  "init": res.report["init"], "first_class": first_class}
                print(f"{held:8s} seed {seed} onboarded/jointly: "
                      + "  ".join(f"{k} {v:.3f}" for k, v in ratios.items())
                      + f"   (init {res.report['init']['chosen']}; pretrain {t1 - t0:.0f} s, onboard {t3 - t2:.0f} s)",
                      flush=True)
                print(f"{'':8s} first-class (its pairs vs the pairs among the other three, mm / deg): "
                      + "  ".join(f"{kind} {s['new_dist_mm']:.2f} / {s['new_dir_deg']:.2f} vs "
                                  f"{s['existing_dist_mm']:.2f} / {s['existing_dir_deg']:.2f}"
                                  for kind, s in first_class.items()), flush=True)
            median = {k: statistics.median(r["ratios"][k] for r in per_seed.values()) for k in ratios}
            out[held] = {"jointly": jointly, "seeds": per_seed, "median_ratios": median, "pretrain_s": t1 - t0}
            if len(seeds) > 1:
                print(f"{held:8s} median over seeds {','.join(map(str, seeds))}: "
                      + "  ".join(f"{k} {v:.3f}" for k, v in median.items()))
    worst = max(v for r in out.values() for v in r["median_ratios"].values())
    print(f"worst leave-one-out ratio {worst:.3f}{' (median over seeds)' if len(seeds) > 1 else ''} "
          f"(target <= 1.15): {'OK' if worst <= 1.15 else 'MISSED'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["time", "steps", "leave-one-out"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--cache", default=None, help="folder keeping the leave-one-out spaces between runs")
    ap.add_argument("--seeds", default="0", help="leave-one-out: onboarding seeds, comma-separated (e.g. 0,1,2)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; onboarding defaults: "
          f"{ONBOARD_DEFAULTS.steps} steps, batch {ONBOARD_DEFAULTS.batch}")
    if args.what == "time":
        result = bench_time(args.repeats)
    elif args.what == "steps":
        result = bench_steps()
    else:
        result = bench_leave_one_out(args.pretrain_steps, args.cache, [int(s) for s in args.seeds.split(",")])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
