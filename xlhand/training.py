"""Fitting adapters: one loop for pretraining a space (every adapter trains) and onboarding (one trains, the rest
are frozen). Checkpoints are safetensors, written atomically; a run resumes exactly where it stopped.

Each step, for every source hand ``s``: sample configurations (uniform within limits, or a pinch template plus
noise with probability ``pinch_probability``), encode to the posterior mean ``z``, decode ``z`` on every other
hand ``t`` and compare pinch vectors (:mod:`xlhand.losses`); add reconstruction and KL for trainable hands.
Pairs where both hands are frozen contribute nothing and are skipped; a frozen source's latents and geometry do
not depend on anything being trained, so they are computed once for a pool of samples and drawn from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from itertools import permutations
from pathlib import Path
from typing import Callable

import torch

from .atomic import atomic_path
from .errors import XlhandError
from .hand import Hand
from .optim import Adam
from .losses import kl_loss, pinch_vectors, retarget_loss, shared_pairs
from .poses import pinch_templates
from .space import Space


@dataclass(frozen=True)
class FitConfig:
    steps: int = 3000
    batch: int = 1024
    lr: float = 2e-3
    lr_final: float = 1e-4  # cosine decay from lr to lr_final
    pinch_probability: float = 0.5
    templates: int = 2048  # pinch templates per hand
    template_noise: float = 0.02  # std of noise added to a template, normalised joint units
    pool: int = 32768  # precomputed samples per frozen source hand
    checkpoint_every: int = 250
    seed: int = 0


class Sampler:
    """Draws training configurations for one hand: uniform, or a pinch template plus noise."""

    def __init__(self, hand: Hand, templates: torch.Tensor, cfg: FitConfig):
        self.hand, self.templates, self.cfg = hand, hand.normalize(templates), cfg

    def __call__(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x = torch.rand(n, self.hand.dof, generator=generator) * 2 - 1
        if len(self.templates) and self.cfg.pinch_probability > 0:
            use = torch.rand(n, generator=generator) < self.cfg.pinch_probability
            pick = torch.randint(len(self.templates), (n,), generator=generator)
            noisy = self.templates[pick] + self.cfg.template_noise * torch.randn(n, self.hand.dof, generator=generator)
            x = torch.where(use[:, None], noisy.clamp(-1, 1), x)
        return self.hand.denormalize(x)


# ---------------------------------------------------------------------------------------------------------------
# The loop


StepCallback = Callable[[int, dict[str, float]], None]


def fit(
    space: Space,
    trainable: list[str],
    cfg: FitConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_step: StepCallback | None = None,
) -> dict[str, float]:
    """Train the adapters of ``trainable`` hands in ``space`` in place; the others stay bit-for-bit frozen.

    With ``checkpoint``, state is saved every ``cfg.checkpoint_every`` steps and on interruption (Ctrl-C), and
    ``resume=True`` continues from it. Returns the last step's loss terms.
    """
    for name in trainable:
        space.hand(name)
    names = space.hands
    frozen = [n for n in names if n not in trainable]
    hands = {n: space.hand(n) for n in names}
    template_gen = torch.Generator().manual_seed(cfg.seed + 1)
    samplers = {n: Sampler(hands[n], pinch_templates(hands[n], cfg.templates, template_gen), cfg) for n in names}
    gen = torch.Generator().manual_seed(cfg.seed)

    pairs = {(s, t): shared_pairs(hands[s], hands[t]) for s, t in permutations(names, 2)}
    active = [(s, t) for (s, t), p in pairs.items() if p and (s in trainable or t in trainable)]

    for n in names:
        space.adapters[n].requires_grad_(n in trainable)
    params = [p for n in trainable for p in space.adapters[n].parameters()]
    opt = Adam(params, lr=cfg.lr)

    # frozen sources: latents and fingertips precomputed once (exact: nothing trained changes them)
    pools: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    with torch.no_grad():
        for s in frozen:
            if any(src == s for src, _ in active):
                q = samplers[s](cfg.pool, template_gen)
                z, _ = space.encode(s, q)
                pools[s] = (z, hands[s].fingertips(q))

    start = 0
    if resume and checkpoint is not None and checkpoint.exists():
        start = _load_checkpoint(checkpoint, space, trainable, opt, gen, cfg)
    last: dict[str, float] = {}
    done = start
    try:
        for step in range(start, cfg.steps):
            frac = step / max(cfg.steps - 1, 1)
            opt.lr = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * frac))
            terms = _objective(space, hands, trainable, samplers, pools, pairs, active, cfg, gen)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            done = step + 1
            last = {k: float(v.detach()) for k, v in terms.items()}
            if checkpoint is not None and done % cfg.checkpoint_every == 0 and done < cfg.steps:
                _save_checkpoint(checkpoint, space, trainable, opt, gen, done, cfg)
            if on_step is not None:
                on_step(done, last)
    except KeyboardInterrupt:
        if checkpoint is not None and done > start:
            _save_checkpoint(checkpoint, space, trainable, opt, gen, done, cfg)
        raise
    finally:
        for n in names:
            space.adapters[n].requires_grad_(False)
    return last


def _objective(space, hands, trainable, samplers, pools, pairs, active, cfg, gen) -> dict[str, torch.Tensor]:
    """One step's loss terms. Latents of every source are decoded on each target in a single batched call (one
    decoder pass and one FK pass per target hand), which is what makes a step cheap."""
    loss = space.loss
    latents: dict[str, torch.Tensor] = {}
    tips: dict[str, torch.Tensor] = {}
    targets_x: dict[str, torch.Tensor] = {}
    kl_terms = []
    needed = {s for s, _ in active} | set(trainable)
    for s in [n for n in space.hands if n in needed]:  # a fixed order: the generator is drawn from in turn
        if s in trainable:
            q = samplers[s](cfg.batch, gen)
            x = hands[s].normalize(q)
            mean, logvar = space.adapters[s].encode(x)
            kl_terms.append(kl_loss(mean, logvar))
            latents[s], targets_x[s] = mean, x
            with torch.no_grad():
                tips[s] = hands[s].fingertips(q)
        else:
            z, t = pools[s]
            pick = torch.randint(len(z), (cfg.batch,), generator=gen)
            latents[s], tips[s] = z[pick], t[pick]
    rec_terms, ret_terms = [], []
    for t in space.hands:
        sources = [s for s, tt in active if tt == t]
        own = t in trainable
        if not sources and not own:
            continue
        blocks = ([t] if own else []) + sources
        x_t = space.adapters[t].decode(torch.cat([latents[b] for b in blocks]))
        chunks = x_t.split(cfg.batch)
        if own:
            rec_terms.append(((chunks[0] - targets_x[t]) ** 2).mean())
            chunks = chunks[1:]
        if sources:
            tips_t = hands[t].fingertips(hands[t].denormalize(torch.cat(chunks))).split(cfg.batch)
            for s, tips_ts in zip(sources, tips_t):
                p = pairs[(s, t)]
                ret_terms.append(retarget_loss(pinch_vectors(hands[s], tips[s], p), pinch_vectors(hands[t], tips_ts, p),
                                               loss))
    zero = torch.zeros(())
    rec = torch.stack(rec_terms).mean() if rec_terms else zero
    kl = torch.stack(kl_terms).mean() if kl_terms else zero
    ret = torch.stack(ret_terms).mean() if ret_terms else zero
    return {"loss": loss.rec * rec + ret + loss.kl * kl, "rec": rec, "retarget": ret, "kl": kl}


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints (safetensors; metadata holds the step and config)


def _save_checkpoint(path: Path, space: Space, trainable, opt, gen, step: int, cfg: FitConfig) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in space.tensors(trainable).items()}
    adam_steps = []
    for i in range(len(opt.params)):
        state = opt.state.get(i, {})
        if state:
            tensors[f"opt.{i}.exp_avg"] = state["exp_avg"].contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = state["exp_avg_sq"].contiguous()
            adam_steps.append(float(state["step"]))
        else:
            adam_steps.append(0.0)
    tensors["rng"] = gen.get_state()
    meta = {"step": step, "config": asdict(cfg), "trainable": list(trainable), "adam_steps": adam_steps,
            "frozen_fingerprint": _frozen_fingerprint(space, trainable)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"xlhand_checkpoint": json.dumps(meta)})


def _load_checkpoint(path: Path, space: Space, trainable, opt, gen, cfg: FitConfig) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["xlhand_checkpoint"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise XlhandError(f"cannot resume: not a readable checkpoint ({' '.join(str(exc).split())[:160]})",
                          path) from None
    if meta.get("trainable") != list(trainable) or meta.get("config", {}).get("seed") != cfg.seed:
        raise XlhandError("cannot resume: the checkpoint is for another run (different hands or seed)", path)
    if meta.get("frozen_fingerprint") != _frozen_fingerprint(space, trainable):
        raise XlhandError("cannot resume: the frozen adapters differ from the checkpoint's", path)
    for name in trainable:
        prefix = f"model.{name}."
        space.adapters[name].load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for i in range(len(opt.params)):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[i] = {
                "step": int(meta["adam_steps"][i]),
                "exp_avg": tensors[f"opt.{i}.exp_avg"].clone(),
                "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].clone(),
            }
    gen.set_state(tensors["rng"])
    return int(meta["step"])


def _frozen_fingerprint(space: Space, trainable) -> str:
    from .space import fingerprint_tensors

    frozen = [n for n in space.hands if n not in trainable]
    return fingerprint_tensors(space.tensors(frozen)) if frozen else ""


def checkpoint_path_for(out: Path) -> Path:
    """Where a run writing ``out`` keeps its resume checkpoint."""
    return out.with_name(out.name + ".ckpt")

