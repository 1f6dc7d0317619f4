"""Fingertip FK throughput: xlhand's fused fingertip path against pytorch-kinematics' full chain, same run.

For every built-in hand and the 16-DoF fixture hands (Allegro, LEAP from ``../shared`` beside the repository),
on a batch of uniform in-limit configurations (float32, CPU):

- ``tips``: ``hand.fingertips(q)`` (the fused fingertip chain, analytic backward);
- ``pk``: ``hand.link_poses(q)``, pytorch-kinematics' full-chain FK over every link (with xlhand's mimic
  expansion), then the fingertip points taken from the tip links' poses -- what one would do without the fast path.

Each is timed forward (no grad) and forward+backward (``tips.sum().backward()`` to the joint angles). Figures
are configurations per second, the median of ``--runs`` runs after one warm-up; the four measurements of a hand
are interleaved run by run so that machine load affects them alike. Both paths are checked to agree first.

    python benchmarks/fk.py [--batch 65536] [--runs 5] [--threads N] [--json results.json]

Run it on an otherwise idle machine: with another process busy on one of the cores, torch's default of one
thread per core loses most of its speed (both paths, the short fingertip ops more), and ``--threads 1`` gives
the steadier figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

import xlhand

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BUILTIN = ["ability", "inspire", "xhand", "paxini"]
FIXTURES = {
    "allegro": "fixtures/hands/allegro_hand/allegro_hand_right.urdf",
    "leap": "fixtures/hands/leap_hand/leap_hand_right.urdf",
}
TARGET_RATIO = 8.0  # 16-DoF fingertip FK against the full chain, both modes


def pk_tips(hand: xlhand.Hand, q: torch.Tensor) -> torch.Tensor:
    """Fingertips ``(B, F, 3)`` from pytorch-kinematics' full-chain link poses."""
    poses = hand.link_poses(q)
    out = []
    for tip in hand.tips.values():
        T = poses[tip.link]
        offset = torch.tensor(tip.offset, dtype=q.dtype)
        out.append(T[:, :3, :3] @ offset + T[:, :3, 3])
    return torch.stack(out, dim=1)


def _forward(fn, q):
    def run():
        with torch.no_grad():
            fn(q)

    return run


def _forward_backward(fn, q):
    def run():
        x = q.clone().requires_grad_(True)
        fn(x).sum().backward()

    return run


def bench_hand(name: str, hand: xlhand.Hand, batch: int, runs: int) -> dict:
    q = hand.sample(batch, generator=torch.Generator().manual_seed(0))
    fast, full = hand.fingertips, (lambda x: pk_tips(hand, x))
    with torch.no_grad():
        diff = float((fast(q[:4096]) - full(q[:4096])).abs().max())
    cases = {
        "tips_fwd": _forward(fast, q),
        "pk_fwd": _forward(full, q),
        "tips_fwdbwd": _forward_backward(fast, q),
        "pk_fwdbwd": _forward_backward(full, q),
    }
    for run in cases.values():  # warm-up
        run()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for key, run in cases.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    rate = {k: batch / statistics.median(v) for k, v in times.items()}
    return {
        "hand": name,
        "dof": hand.dof,
        "fingers": len(hand.fingers),
        "max_abs_diff_m": diff,
        **{f"{k}_configs_per_s": round(v) for k, v in rate.items()},
        "ratio_fwd": rate["tips_fwd"] / rate["pk_fwd"],
        "ratio_fwdbwd": rate["tips_fwdbwd"] / rate["pk_fwdbwd"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hands", nargs="*", help="subset of hands (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice, one per core)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    hands: dict[str, xlhand.Hand] = {name: xlhand.load_hand(name) for name in BUILTIN}
    skipped = []
    for name, rel in FIXTURES.items():
        path = SHARED / rel
        if not path.exists():
            skipped.append(f"{name}: {path} not found (../shared is missing); skipped")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hands[name] = xlhand.load_hand(path)
    if args.hands:
        hands = {k: v for k, v in hands.items() if k in args.hands}

    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "batch": args.batch,
        "runs": args.runs,
        "dtype": "float32",
    }
    print(f"fingertip FK vs pytorch-kinematics full chain: batch {args.batch:,}, median of {args.runs} runs, "
          f"float32, torch {env['torch']}, {env['threads']} threads on {env['cpus']} CPUs")
    for note in skipped:
        print(f"note: {note}")
    header = (f"{'hand':<10}{'dof':>4}{'F':>3}  {'tips fwd':>11}{'pk fwd':>11}{'ratio':>7}  "
              f"{'tips f+b':>11}{'pk f+b':>11}{'ratio':>7}  {'max diff':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for name, hand in hands.items():
        r = bench_hand(name, hand, args.batch, args.runs)
        rows.append(r)
        print(f"{name:<10}{r['dof']:>4}{r['fingers']:>3}  {r['tips_fwd_configs_per_s']:>11,}"
              f"{r['pk_fwd_configs_per_s']:>11,}{r['ratio_fwd']:>6.1f}x  {r['tips_fwdbwd_configs_per_s']:>11,}"
              f"{r['pk_fwdbwd_configs_per_s']:>11,}{r['ratio_fwdbwd']:>6.1f}x  {r['max_abs_diff_m']:>9.1e}",
              flush=True)
    print("(configs/s; 'max diff': largest fingertip coordinate difference between the two paths, metres)")

    sixteen = [r for r in rows if r["dof"] == 16 and r["hand"] in FIXTURES]
    met = bool(sixteen) and all(min(r["ratio_fwd"], r["ratio_fwdbwd"]) >= TARGET_RATIO for r in sixteen)
    if sixteen:
        worst = min(min(r["ratio_fwd"], r["ratio_fwdbwd"]) for r in sixteen)
        print(f"16-DoF target (fingertip FK >= {TARGET_RATIO:g}x the full chain, forward and forward+backward): "
              f"{'met' if met else 'NOT met'} (lowest ratio {worst:.1f}x)")
    else:
        print("16-DoF target: not measured (no 16-DoF fixture hand available)")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "skipped": skipped, "results": rows,
                                         "target": {"ratio": TARGET_RATIO, "met": met if sixteen else None}},
                                        indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
