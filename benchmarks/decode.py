"""Batched encode/decode throughput and the latency of decoding one 64 x 32 latent chunk into joint commands.

    python benchmarks/decode.py [--space S] [--json FILE]

Baseline in the same run: the same chunk decoded with autograd enabled (what a naive caller pays).
Target (issue 3): one 64 x 32 chunk decodes in under 1 ms on the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import xlhand


def median_time(fn, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default=None)
    ap.add_argument("--batch", type=int, default=65_536)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (a 20 Hz control loop decoding one chunk is best served by 1: on a shared "
                         "machine, waiting for a second busy core costs more than it gives)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    space = xlhand.load_space(args.space)
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; space {space.path}")
    print(f"{'hand':10s} {'encode cfg/s':>14s} {'decode cfg/s':>14s} {'chunk ms':>9s} {'chunk ms (grad)':>16s} {'ratio':>6s}")
    for name in space.hands:
        hand = space.hand(name)
        q = hand.sample(args.batch, generator=torch.Generator().manual_seed(0))
        z = torch.randn(args.batch, space.latent_dim, generator=torch.Generator().manual_seed(1))
        chunk = torch.randn(64, space.latent_dim, generator=torch.Generator().manual_seed(2))
        with torch.inference_mode():
            enc = median_time(lambda: space.encode(name, q), 5)
            dec = median_time(lambda: space.decode(name, z), 5)
            lat = median_time(lambda: space.decode(name, chunk), 200)
        base = median_time(lambda: space.decode(name, chunk.requires_grad_(True)), 200)
        chunk.requires_grad_(False)
        row = {"hand": name, "encode_cfg_per_s": args.batch / enc, "decode_cfg_per_s": args.batch / dec,
               "chunk_decode_ms": lat * 1e3, "chunk_decode_grad_ms": base * 1e3, "ratio": base / lat}
        rows.append(row)
        print(f"{name:10s} {row['encode_cfg_per_s']:14,.0f} {row['decode_cfg_per_s']:14,.0f} {row['chunk_decode_ms']:9.3f} "
              f"{row['chunk_decode_grad_ms']:16.3f} {row['ratio']:6.2f}")
    worst = max(r["chunk_decode_ms"] for r in rows)
    print(f"slowest 64x{space.latent_dim} chunk decode: {worst:.3f} ms (target < 1 ms): {'OK' if worst < 1 else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
