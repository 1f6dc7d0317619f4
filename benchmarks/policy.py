"""Policy speed on one thread: one chunk (image + instruction + state -> 64 actions -> joint commands through a
hand's decoder and wrist poses through its FK), and one training step.

- ``chunk``: median wall time of ``HandRunner.chunk`` on inspire (the state's encoding, ``flow_steps`` Euler
  steps, the decode of the 64 latents, the wrist poses from the arm part), against the baseline of the same call
  with one flow step (what everything but the flow costs), measured in the same run. Target (issue 17): 50 ms, so
  a 3.2 s chunk is never late.
- ``train step``: median wall time of one optimiser step at the default batch (64) on 96x96 images, and the steps
  that fit in 30 minutes.

    python benchmarks/policy.py [--runs 20] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

TARGET_CHUNK_MS = 50.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    import numpy as np

    from xlhand.loading import load_space
    from xlhand.policy.model import LatentPolicy, PolicyConfig, flow_noise, tokenize, vocabulary
    from xlhand.policy.rollout import HandRunner
    from xlhand.sim.tasks import TASKS

    space = load_space()
    config = PolicyConfig(vocab=vocabulary(t.instruction for t in TASKS.values()))
    torch.manual_seed(0)
    model = LatentPolicy(config).eval()
    params = sum(p.numel() for p in model.parameters())
    image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    text = TASKS["lift_ball"].instruction
    tokens = tokenize(config, [text])
    hand = space.hand("inspire")
    runner = HandRunner(model, space, hand)
    q = np.clip(np.zeros(hand.dof), hand.lower.numpy(), hand.upper.numpy())
    wrist = np.array([0.0, 0.0, 0.15, 1.0, 0.0, 0.0, 0.0])

    def chunk(steps: int) -> float:
        t0 = time.perf_counter()
        runner.chunk(image, text, q, wrist, steps=steps)
        return time.perf_counter() - t0

    for steps in (1, config.flow_steps):  # warm both paths
        chunk(steps)
    full, base = [], []
    for _ in range(args.runs):  # interleaved: load affects both alike
        full.append(chunk(config.flow_steps))
        base.append(chunk(1))
    ms, base_ms = 1000 * statistics.median(full), 1000 * statistics.median(base)
    out = {"parameters": params, "chunk_ms": ms, "baseline_one_flow_step_ms": base_ms, "ratio": ms / base_ms,
           "target_ms": TARGET_CHUNK_MS, "meets_target": ms <= TARGET_CHUNK_MS}
    print(f"chunk ({config.flow_steps} flow steps, decode included): {ms:.1f} ms (one flow step: {base_ms:.1f} ms; "
          f"ratio {ms / base_ms:.2f}); {params / 1e6:.2f}M parameters; target {TARGET_CHUNK_MS:g} ms: "
          f"{'met' if ms <= TARGET_CHUNK_MS else 'MISSED'}", flush=True)

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B = 64
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (B, 96, 96, 3), dtype=torch.uint8)
    toks = tokens.expand(B, -1)
    states = torch.randn(B, config.action_dim)
    chunks = torch.randn(B, config.chunk, config.action_dim)
    weights = torch.full((B, config.roles), 1.0 / config.roles)
    times = []
    for k in range(max(3, args.runs // 4) + 1):
        noise, t = flow_noise(chunks.shape, g)
        t0 = time.perf_counter()
        loss = model(images, toks, states, chunks, noise, t, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k:  # the first step allocates
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    out["train_step_s_batch64"] = step_s
    out["steps_in_30_min"] = int(1800 / step_s)
    print(f"train step, batch {B}: {step_s * 1000:.0f} ms; {int(1800 / step_s)} steps fit in 30 minutes", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
