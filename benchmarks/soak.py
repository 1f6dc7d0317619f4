"""Soak: the control loop at 20 Hz against the TCP device emulator over loopback, with faults injected; nothing
unsafe may reach the device.

The policy emits random latent chunks (inspire's decoder turns them into joint targets). On a schedule, chunks
are replaced by faults: NaN targets, targets far outside the limits, jumps far above the velocity limit, and a
0.5 s stall. The emulator drops the connection every ``--drop-every`` seconds. The emulator checks every command
it receives against the safety limits. Reported: violations (must be 0), the faults logged, reconnections,
commands, send jitter (p50/p99/max, against the baseline of the same loop with no faults and no drops, measured
in the same run), and the chunk-ready-to-first-command latency.

    python benchmarks/soak.py [--seconds 600] [--baseline-seconds 20] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def soak(seconds: float, *, faults: bool = True, drop_every: float = 7.0, seed: int = 0) -> dict:
    from xlhand import load_hand
    from xlhand.loading import load_space
    from xlhand.runtime.loop import ControlLoop
    from xlhand.runtime.safety import SafetyLimits
    from xlhand.runtime.tcp import DeviceEmulator, TcpDriver

    torch.set_num_threads(1)
    space = load_space()
    hand = load_hand("inspire")
    limits = SafetyLimits.for_hand(hand)
    rng = np.random.default_rng(seed)
    span = limits.upper - limits.lower
    count = {"chunks": 0, "nan": 0, "outside": 0, "jump": 0, "stall": 0}

    def policy(obs):
        count["chunks"] += 1
        k = count["chunks"]
        z = rng.normal(0, 1.0, (64, space.latent_dim))
        kind = ("ok", "nan", "ok", "outside", "ok", "jump", "ok", "stall")[k % 8] if faults else "ok"
        if kind == "stall":
            count["stall"] += 1
            time.sleep(0.5)
        return z, kind

    def decode(out):
        z, kind = out
        with torch.no_grad():
            q = space.decode("inspire", torch.as_tensor(z, dtype=torch.float32)).double().numpy()
        if kind == "nan":
            count["nan"] += 1
            q[::3] = np.nan
        elif kind == "outside":
            count["outside"] += 1
            q = q + 50 * span
        elif kind == "jump":
            count["jump"] += 1
            q[::2] = limits.lower
            q[1::2] = limits.upper
        return q

    with DeviceEmulator(hand.dof, limits, 1 / 20, q0=np.clip(np.zeros(hand.dof), limits.lower, limits.upper)) as dev:
        driver = TcpDriver(hand, dev.address)
        loop = ControlLoop(driver, policy, decode, limits=limits, execute=32, lead=8)
        stop = {"on": True}

        def dropper():
            while stop["on"]:
                time.sleep(drop_every)
                if stop["on"]:
                    dev.drop_connection()

        import threading

        th = threading.Thread(target=dropper, daemon=True)
        if faults:
            th.start()
        rep = loop.run(seconds)
        stop["on"] = False
        return {"seconds": seconds, "commands_received": dev.received, "violations": list(dev.violations),
                "reconnects": driver.reconnects, "connections": dev.connections, "driver_faults": driver.faults,
                "injected": count, "interventions": rep.interventions, "policy_errors": rep.policy_errors,
                "steps": rep.steps, "late_steps": rep.late_steps, "jitter_ms": rep.jitter_ms,
                "latency_ms": rep.latency_ms, "stopped_by": rep.stopped_by, "driver_error": rep.driver_error}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--baseline-seconds", type=float, default=20.0)
    ap.add_argument("--drop-every", type=float, default=7.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    base = soak(args.baseline_seconds, faults=False)
    res = soak(args.seconds, drop_every=args.drop_every)
    res["baseline_no_faults"] = {k: base[k] for k in ("jitter_ms", "latency_ms", "violations", "steps")}
    j, jb = res["jitter_ms"], base["jitter_ms"]
    print(f"soak {args.seconds:.0f} s: {res['commands_received']} commands, {len(res['violations'])} violations at "
          f"the device, {res['reconnects']} reconnects, injected {res['injected']}, interventions "
          f"{res['interventions']}", flush=True)
    print(f"send jitter p50/p99/max {j['p50']:.2f}/{j['p99']:.2f}/{j['max']:.2f} ms (no faults: "
          f"{jb['p50']:.2f}/{jb['p99']:.2f}/{jb['max']:.2f}); chunk ready -> first command p50 "
          f"{res['latency_ms'].get('p50', float('nan')):.2f} ms", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
