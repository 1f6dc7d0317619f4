"""The paper's metrics (section 4.2), made precise in DESIGN section 8.

On ``n`` uniform in-limit configurations per hand (fixed seed), latents are posterior means:

- reconstruction: joint RMSE (rad) and fingertip RMSE (mm, Euclidean per tip);
- cross-hand transfer A -> B: encode on A, decode on B; pinch distance error (mm) = mean over shared pairs of
  ``| |d_A| - |d_B| |``, direction error (degrees) = mean angle between ``d_A`` and ``d_B``; on "random" poses (all
  samples) and "pinch" poses (the samples whose thumb tip is within 2 cm of another fingertip);
- oracle: for a subset of the same source poses, B's joints optimised directly (Adam within the limits, several
  starts) on the training pinch objective; learned / oracle error ratios;
- latent continuity: Gaussian noise (std 0.05) on latents, mean joint change (rad) and fingertip change (mm);
- interpolation smoothness: 64-step linear latent paths between encoded random poses, mean squared 2nd and 3rd
  differences of the decoded fingertip trajectories (mm^2).
"""

from __future__ import annotations

from itertools import permutations

import torch

from xlhand._util.optim import Adam
from xlhand.hand.model import Hand
from xlhand.latent.losses import pair_errors, pinch_vectors, retarget_terms, shared_pairs
from xlhand.latent.space import LossSettings, Space

PINCH_RADIUS = 0.02  # m
NOISE_STD = 0.05
INTERP_STEPS = 64


def pinch_mask(hand: Hand, tips: torch.Tensor, radius: float = PINCH_RADIUS) -> torch.Tensor:
    """``(B,)`` True where the thumb tip is within ``radius`` of another fingertip (all False without a thumb)."""
    if "thumb" not in hand.fingers or len(hand.fingers) < 2:
        return torch.zeros(tips.shape[0], dtype=torch.bool)
    t = hand.fingers.index("thumb")
    others = [i for i in range(len(hand.fingers)) if i != t]
    return (tips[:, others] - tips[:, t : t + 1]).norm(dim=-1).min(dim=1).values < radius


def oracle_decode(target: Hand, d_source: torch.Tensor, pairs, loss: LossSettings, generator: torch.Generator,
                  starts: int = 3, iterations: int = 150) -> torch.Tensor:
    """Per-pose best target configuration ``(B, dof)`` for source pinch vectors ``d_source (B, P, 3)``.

    Minimises the training pinch objective by Adam over unconstrained ``u`` with ``q = limits(tanh(u))``, from
    ``starts`` random starts per pose (one at mid-range); keeps each pose's best start.
    """
    B = d_source.shape[0]
    x0 = torch.rand(starts, B, target.dof, generator=generator) * 1.6 - 0.8
    x0[0] = 0.0
    u = torch.atanh(x0).reshape(starts * B, target.dof).clone().requires_grad_(True)
    d_rep = d_source.repeat(starts, 1, 1)
    opt = Adam([u], lr=0.08)

    def per_pose(u_):
        q = target.denormalize(torch.tanh(u_))
        return retarget_terms(d_rep, pinch_vectors(target, target.fingertips(q), pairs), loss).mean(-1)

    for _ in range(iterations):
        opt.zero_grad()
        per_pose(u).sum().backward()
        opt.step()
    with torch.no_grad():
        obj = per_pose(u).reshape(starts, B)
        best = obj.argmin(dim=0)
        q = target.denormalize(torch.tanh(u)).reshape(starts, B, target.dof)
        return q[best, torch.arange(B)]


@torch.no_grad()
def evaluate(space: Space, hands: list[str] | None = None, seed: int = 0, n: int = 10_000,
             oracle_n: int = 1000, oracle: bool = True, pairs: list[tuple[str, str]] | None = None,
             per_hand: list[str] | None = None, oracle_pairs: list[tuple[str, str]] | None = None) -> dict:
    """All metrics of DESIGN section 8 for ``hands`` (default: every hand of the space). JSON-ready.

    ``pairs`` restricts the transfer table to those ordered pairs (default: all among ``hands``); ``per_hand``
    restricts reconstruction, continuity and smoothness to those hands (default: ``hands``); ``oracle_pairs``
    restricts the oracle to those pairs (default: every pair, when ``oracle``). Samples are drawn
    for every hand in ``hands`` in order, so figures for the same hand and seed agree across calls.
    """
    names = hands or space.hands
    gen = torch.Generator().manual_seed(seed)
    data = {}
    for name in names:
        hand = space.hand(name)
        q = hand.sample(n, generator=gen)
        tips = hand.fingertips(q)
        z, _ = space.encode(name, q)
        data[name] = {"q": q, "tips": tips, "z": z, "pinch": pinch_mask(hand, tips)}

    recon, continuity, smooth = {}, {}, {}
    for name in names if per_hand is None else per_hand:
        hand, d = space.hand(name), data[name]
        q_hat = space.decode(name, d["z"])
        tips_hat = hand.fingertips(q_hat)
        recon[name] = {
            "joint_rmse_rad": float(((q_hat - d["q"]) ** 2).mean().sqrt()),
            "fingertip_rmse_mm": float(((tips_hat - d["tips"]) ** 2).sum(-1).mean().sqrt() * 1000),
        }
        z_noisy = d["z"] + NOISE_STD * torch.randn(d["z"].shape, generator=gen)
        q_noisy = space.decode(name, z_noisy)
        continuity[name] = {
            "joint_change_rad": float((q_noisy - q_hat).abs().mean()),
            "fingertip_change_mm": float((hand.fingertips(q_noisy) - tips_hat).norm(dim=-1).mean() * 1000),
        }
        m = min(256, n // 2)
        z0, z1 = d["z"][:m], d["z"][m : 2 * m]
        alpha = torch.linspace(0, 1, INTERP_STEPS)[:, None, None]
        path = (1 - alpha) * z0 + alpha * z1  # (T, m, latent)
        traj = hand.fingertips(space.decode(name, path.reshape(-1, space.latent_dim)))
        traj = traj.reshape(INTERP_STEPS, m, len(hand.fingers), 3) * 1000
        d2 = traj[2:] - 2 * traj[1:-1] + traj[:-2]
        d3 = traj[3:] - 3 * traj[2:-1] + 3 * traj[1:-2] - traj[:-3]
        smooth[name] = {"d2_mm2": float((d2**2).sum(-1).mean()), "d3_mm2": float((d3**2).sum(-1).mean())}

    transfer = {"random": {}, "pinch": {}}
    jobs: dict[tuple, list] = {}  # (target, pairs) -> oracle problems, solved together per target below
    for a, b in pairs if pairs is not None else permutations(names, 2):
        ha, hb = space.hand(a), space.hand(b)
        pairs = shared_pairs(ha, hb)
        if not pairs:
            continue
        d = data[a]
        q_b = space.decode(b, d["z"])
        d_a = pinch_vectors(ha, d["tips"], pairs)
        d_b = pinch_vectors(hb, hb.fingertips(q_b), pairs)
        dist, ang = pair_errors(d_a, d_b)
        subsets = {"random": torch.ones(n, dtype=torch.bool), "pinch": d["pinch"]}
        for kind, mask in subsets.items():
            entry = {"pairs": [f"{x}-{y}" for x, y in pairs], "n": int(mask.sum())}
            if entry["n"]:
                entry["dist_mm"] = float(dist[mask].mean())
                entry["dir_deg"] = float(ang[mask].mean())
            if oracle and entry["n"] and (oracle_pairs is None or (a, b) in oracle_pairs):
                idx = mask.nonzero().squeeze(1)[:oracle_n]
                jobs.setdefault((b, tuple(pairs)), []).append((entry, d_a[idx], dist[idx], ang[idx]))
            transfer[kind].setdefault(a, {})[b] = entry

    for (b, pairs), items in jobs.items():
        hb = space.hand(b)
        d_src = torch.cat([d for _, d, _, _ in items])
        with torch.enable_grad():
            q_o = oracle_decode(hb, d_src, list(pairs), space.loss, gen)
        od, oa = pair_errors(d_src, pinch_vectors(hb, hb.fingertips(q_o), list(pairs)))
        start = 0
        for entry, d, dist_i, ang_i in items:
            k = len(d)
            o_dist, o_ang = od[start : start + k], oa[start : start + k]
            start += k
            entry["oracle_n"] = k
            entry["oracle_dist_mm"] = float(o_dist.mean())
            entry["oracle_dir_deg"] = float(o_ang.mean())
            entry["learned_dist_mm_on_oracle_set"] = float(dist_i.mean())
            entry["learned_dir_deg_on_oracle_set"] = float(ang_i.mean())
            entry["ratio_dist"] = entry["learned_dist_mm_on_oracle_set"] / max(entry["oracle_dist_mm"], 1e-9)
            entry["ratio_dir"] = entry["learned_dir_deg_on_oracle_set"] / max(entry["oracle_dir_deg"], 1e-9)

    return {
        "space": {"path": str(space.path) if space.path else None, "fingerprint": space.fingerprint,
                  "hands": list(names), "kinematics": {h: space.hand(h).kinematics_hash for h in names}},
        "seed": seed,
        "n": n,
        "reconstruction": recon,
        "transfer": transfer,
        "summary": summarize(transfer),
        "continuity": continuity,
        "smoothness": smooth,
    }


def summarize(transfer: dict, pairs: list[tuple[str, str]] | None = None) -> dict:
    """Means over ordered pairs (all, or ``pairs``) of each pose kind's errors, oracle errors and ratios."""
    summary = {}
    for kind, table in transfer.items():
        entries = [e for a, row in table.items() for b, e in row.items()
                   if "dist_mm" in e and (pairs is None or (a, b) in pairs)]
        if not entries:
            continue
        s = {
            "pairs": len(entries),
            "dist_mm": sum(e["dist_mm"] for e in entries) / len(entries),
            "dir_deg": sum(e["dir_deg"] for e in entries) / len(entries),
        }
        if all("oracle_dist_mm" in e for e in entries):
            s["oracle_dist_mm"] = sum(e["oracle_dist_mm"] for e in entries) / len(entries)
            s["oracle_dir_deg"] = sum(e["oracle_dir_deg"] for e in entries) / len(entries)
            s["ratio_dist"] = sum(e["ratio_dist"] for e in entries) / len(entries)
            s["ratio_dir"] = sum(e["ratio_dir"] for e in entries) / len(entries)
        summary[kind] = s
    return summary


def compare(result: dict, against: dict) -> dict:
    """Two :func:`evaluate` results on the same hands, seed and sample count, error by error.

    Every cross-hand transfer error both results have (pose kind x ordered pair x distance and direction) becomes
    a row with both values and whether ``result`` is at least as good (lower or equal); reconstruction joint RMSE
    is compared per hand as a ratio. Raises ``ValueError`` when the two were not measured on the same samples (other
    seed, sample count, hands, or a hand's kinematics).
    """
    for key in ("seed", "n"):
        if result[key] != against[key]:
            raise ValueError(f"the results were measured with different {key} ({result[key]} and {against[key]})")
    if result["space"]["hands"] != against["space"]["hands"]:
        raise ValueError(f"the results cover different hands ({', '.join(result['space']['hands'])} and "
                         f"{', '.join(against['space']['hands'])})")
    for h, k in result["space"]["kinematics"].items():
        if against["space"]["kinematics"][h] != k:
            raise ValueError(f"its {h!r} has other kinematics, so the two were not measured on the same poses")
    rows = []
    for kind, table in result["transfer"].items():
        for a, row in table.items():
            for b, e in row.items():
                o = against["transfer"].get(kind, {}).get(a, {}).get(b, {})
                if "dist_mm" not in e or "dist_mm" not in o:
                    continue
                for metric in ("dist_mm", "dir_deg"):
                    rows.append({"poses": kind, "from": a, "to": b, "metric": metric, "value": e[metric],
                                 "against": o[metric], "ratio": e[metric] / max(o[metric], 1e-12),
                                 "at_least_as_good": e[metric] <= o[metric]})
    recon = {h: {"joint_rmse_rad": e["joint_rmse_rad"], "against": against["reconstruction"][h]["joint_rmse_rad"],
                 "ratio": e["joint_rmse_rad"] / max(against["reconstruction"][h]["joint_rmse_rad"], 1e-12)}
             for h, e in result["reconstruction"].items() if h in against["reconstruction"]}
    return {"space": result["space"]["path"], "against": against["space"]["path"], "transfer": rows,
            "at_least_as_good": sum(r["at_least_as_good"] for r in rows), "compared": len(rows),
            "reconstruction": recon}


__all__ = ["compare", "evaluate", "oracle_decode", "pinch_mask", "summarize"]
