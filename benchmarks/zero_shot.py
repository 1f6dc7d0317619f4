"""The zero-shot experiment (issue 17): a latent policy driving hands it never saw act, against the retargeting
baseline ("pi0 + RT", ``xlhand.policy.baseline``) on the same episodes and seeds, with the scripted
demonstrator's success on that hand beside both.

Parts (each optional):
- ``--onboarded BUNDLE``: the latent policy (``--policy``, default the prebuilt one) on every hand with a thumb
  that was onboarded into ``BUNDLE`` from its bare URDF (``xlhand onboard URDF --bundle BUNDLE``).
- ``--held-out-policy FILE --held-out HAND``: a latent policy trained without HAND's demonstrations (and
  without any combinations listed in its training record), evaluated on HAND and on those combinations.
- The baseline (``--baseline FILE``: a joint-space policy, ``train(..., joint_space=True)`` on one hand's
  demonstrations) runs on the same hands and seeds.

    python benchmarks/zero_shot.py --onboarded runs/fixb --baseline runs/rt_inspire.safetensors --episodes 10 \\
        --json zero_shot.json

Prints every cell with both methods, and per hand: mean success, the ratio to the demonstrator's, and whether the
latent policy is at least the baseline's (the must-show: mean 0.7 or more, 0.8 of the demonstrator's, at least
the baseline on every hand).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def _table(rows: dict, title: str) -> None:
    print(f"\n{title}")
    for hand, r in rows.items():
        cells = "  ".join(f"{t} {v['latent']:.2f}/{v['baseline']:.2f}/{v['demo']:.2f}" if v['baseline'] is not None
                          else f"{t} {v['latent']:.2f}/-/{v['demo']:.2f}" for t, v in r["cells"].items())
        print(f"{hand}: mean latent {r['latent_mean']:.2f} baseline "
              f"{r['baseline_mean'] if r['baseline_mean'] is None else round(r['baseline_mean'], 2)} demonstrator "
              f"{r['demo_mean']:.2f}; latent/demonstrator {r['ratio_to_demo']:.2f}; "
              f"at least the baseline: {r['beats_baseline']}")
        print(f"  (latent/baseline/demonstrator) {cells}")


def _compare(hands, tasks, episodes, seed, workers, latent, baseline) -> dict:
    from xlhand.policy.evaluate import evaluate, mean_success

    lat = evaluate(latent, hands, tasks, episodes, seed=seed, workers=workers, demonstrator=True)
    base = evaluate(baseline, hands, tasks, episodes, seed=seed, workers=workers,
                    demonstrator=False) if baseline is not None else None
    out = {}
    for hand in hands:
        n = hand.name
        cells = {t: {"latent": v, "baseline": base["success"][n][t] if base else None,
                     "demo": lat["demonstrator"][n][t]} for t, v in lat["success"][n].items() if v is not None}
        lm, dm = mean_success({n: lat["success"][n]}), mean_success({n: lat["demonstrator"][n]})
        bm = mean_success({n: base["success"][n]}) if base else None
        out[n] = {"cells": cells, "latent_mean": lm, "baseline_mean": bm, "demo_mean": dm,
                  "ratio_to_demo": lm / dm if dm else 0.0,
                  "beats_baseline": None if bm is None else lm >= bm,
                  "meets": lm >= 0.7 and (lm >= 0.8 * dm) and (bm is None or lm >= bm)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=None, help="The latent policy (default: the prebuilt one).")
    ap.add_argument("--onboarded", default=None, help="A bundle holding onboarded hands.")
    ap.add_argument("--held-out-policy", default=None)
    ap.add_argument("--held-out", default=None, help="The built-in hand the held-out policy never saw act.")
    ap.add_argument("--baseline", default=None, help="A joint-space policy (the retargeting baseline).")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1000, help="First seed (apart from the demonstrations' 0..).")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from xlhand.policy.baseline import BaselineController
    from xlhand.policy.io import load_policy
    from xlhand.policy.prebuilt import prebuilt_policy
    from xlhand.policy.rollout import PolicyController
    from xlhand.sim.pool import default_workers
    from xlhand.sim.tasks import TASKS

    workers = args.workers or default_workers()
    tasks = list(TASKS.values())
    results: dict = {"episodes": args.episodes, "seed": args.seed}
    t0 = time.perf_counter()
    if args.onboarded:
        policy = args.policy or str(prebuilt_policy())
        latent = PolicyController(policy, args.onboarded)
        _, space = latent.load()
        _, meta = load_policy(policy)
        trained = set(meta.get("training", {}).get("hands", []))
        hands = [space.hand(n) for n in space.hands if n not in trained and "thumb" in space.hand(n).fingers]
        base = BaselineController(args.baseline, args.onboarded) if args.baseline else None
        results["onboarded"] = _compare(hands, tasks, args.episodes, args.seed, workers, latent, base)
        _table(results["onboarded"], "onboarded hands (the policy never saw them act)")
    if args.held_out_policy:
        latent = PolicyController(args.held_out_policy, None)
        _, space = latent.load()
        base = BaselineController(args.baseline, None) if args.baseline else None
        results["held_out"] = _compare([space.hand(args.held_out)], tasks, args.episodes, args.seed, workers,
                                       latent, base)
        _table(results["held_out"], f"held-out built-in hand {args.held_out}")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
