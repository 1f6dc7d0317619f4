"""Rendering throughput: one hand, a 4-hand grid, and the 64-frame latent interpolation across the built-in hands.

- ``single``: one built-in hand per picture, random poses (forward kinematics batched), at ``--size`` pixels with
  the stills' 2x supersampling and at 1x (the animations' setting); frames per second per hand.
- ``grid``: the four built-in hands side by side with fingertip markers and pinch lines, as ``xlhand render
  interpolate`` draws each frame (192 px cells, 1x); grids per second.
- ``interpolation``: ``render_interpolation`` + ``render_animation`` end to end -- encode two poses (a random one
  and an IK pinch), 64 latents on a line, decode on all four hands, render, write the GIF -- against the 30 s
  target. Uses ``--space`` (a space file or name), else the shipped default space, else a freshly initialised
  (untrained) space over the built-in hands, which costs the same to draw.

Wall-clock and CPU seconds are both shown: llvmpipe renders on the CPU, so other work on the machine slows the
wall clock (the load average is printed). First pictures (GL context, mesh upload, framing) are warm-up and not
counted, except in ``interpolation``, which is timed as a user would run it in a fresh process.

    python benchmarks/render.py [--size 256] [--frames 32] [--space S] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import xlhand
from xlhand.errors import XlhandError

BUILTIN = ["ability", "inspire", "paxini", "xhand"]
TARGET_S = 30.0  # the 64-frame interpolation across the four built-in hands


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench_single(hands, frames: int, size: int, ssaa: int) -> dict[str, float]:
    from xlhand.render import render_frames

    out = {}
    for hand in hands:
        q = hand.sample(frames + 1, generator=torch.Generator().manual_seed(0))
        list(render_frames([hand], [q[:1]], [hand.name], size=size, ssaa=ssaa))  # warm-up
        def run(hand=hand, q=q):
            return list(render_frames([hand], [q[1:]], [hand.name], size=size, ssaa=ssaa, markers=False))

        _, wall, cpu = timed(run)
        out[hand.name] = {"fps": frames / wall, "cpu_ms_per_frame": 1000 * cpu / frames}
    return out


def bench_grid(hands, frames: int, size: int) -> dict[str, float]:
    from xlhand.render import render_frames

    gen = torch.Generator().manual_seed(1)
    qs = [h.sample(frames, generator=gen) for h in hands]
    names = [h.name for h in hands]
    list(render_frames(hands, [q[:1] for q in qs], names, size=size, pinch_lines=True))  # warm-up
    _, wall, cpu = timed(lambda: list(render_frames(hands, qs, names, size=size, pinch_lines=True)))
    return {"fps": frames / wall, "cpu_ms_per_frame": 1000 * cpu / frames}


def space_for(arg: str | None):
    if arg:
        return xlhand.load_space(arg), arg
    try:
        return xlhand.load_space(), "shipped default"
    except XlhandError:
        from xlhand.latent.space import Space

        return Space.new([xlhand.load_hand(n) for n in BUILTIN]), "untrained (no shipped space yet)"


def bench_interpolation(space, frames: int, size: int) -> dict[str, float]:
    from xlhand.render import render_animation, render_interpolation

    names = [n for n in BUILTIN if n in space.hands]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "interpolation.gif"
        _, wall, cpu = timed(lambda: render_animation(
            render_interpolation(space, names, frames, seed=0, size=size), out))
        kib = out.stat().st_size / 1024
    return {"seconds": wall, "cpu_seconds": cpu, "frames": frames, "hands": names, "gif_kib": kib,
            "target_s": TARGET_S, "met": wall <= TARGET_S}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="pixels of a single-hand picture")
    parser.add_argument("--cell", type=int, default=192, help="pixels of a grid cell")
    parser.add_argument("--frames", type=int, default=32, help="frames timed per single-hand and grid figure")
    parser.add_argument("--space", default=None, help="space for the interpolation (default: shipped, else new)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    from xlhand.render import gl

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"OpenGL {gl.describe()}; {os.cpu_count()} CPUs, load average {load:.1f}")
    space, space_note = space_for(args.space)
    interp = bench_interpolation(space, 64, args.cell)  # first: timed as in a fresh process
    print(f"interpolation: 64 frames x {len(interp['hands'])} hands ({args.cell} px cells, GIF "
          f"{interp['gif_kib']:.0f} KiB, space: {space_note}): {interp['seconds']:.1f} s wall, "
          f"{interp['cpu_seconds']:.1f} s CPU -- target {TARGET_S:.0f} s {'met' if interp['met'] else 'MISSED'}")

    hands = [xlhand.load_hand(n) for n in BUILTIN]
    single = {f"{ssaa}x": bench_single(hands, args.frames, args.size, ssaa) for ssaa in (2, 1)}
    for key, rows in single.items():
        cells = "  ".join(f"{name} {r['fps']:.1f}" for name, r in rows.items())
        cpu = sum(r["cpu_ms_per_frame"] for r in rows.values()) / len(rows)
        print(f"single hand, {args.size} px, {key} supersampling: frames/s {cells}  (CPU {cpu:.0f} ms/frame)")
    grid = bench_grid(hands, args.frames, args.cell)
    print(f"4-hand grid, {args.cell} px cells, markers + pinch lines: {grid['fps']:.1f} grids/s "
          f"(CPU {grid['cpu_ms_per_frame']:.0f} ms/grid)")

    if args.json:
        args.json.write_text(json.dumps({"opengl": gl.describe(), "load_average": load, "single": single,
                                         "grid": grid, "interpolation": interp, "space": space_note}, indent=2))


if __name__ == "__main__":
    main()
