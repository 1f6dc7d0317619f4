"""The fit loop: one loop for pretraining a space (every adapter trains) and onboarding (one trains, the rest are
frozen). Checkpoints are safetensors, written atomically; a run resumes exactly where it stopped.

Each step, for every source hand ``s``: sample configurations (uniform within limits, or a pinch template plus
noise with probability ``pinch_probability``), encode to the posterior mean ``z``, decode ``z`` on every other
hand ``t`` and compare pinch vectors (:mod:`xlhand.latent.losses`); add reconstruction and KL for trainable hands.
Pairs where both hands are frozen contribute nothing and are skipped; a frozen source's latents and geometry do
not depend on anything being trained, so they are computed once for a pool of samples and drawn from it
(:mod:`xlhand.training.data`). How one step is computed: :mod:`xlhand.training.step`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from xlhand._util.optim import Adam
from xlhand.latent.space import Space
from xlhand.training.checkpoints import _read_checkpoint, _restore_optimizer, _save_checkpoint
from xlhand.training.config import FitConfig
from xlhand.training.data import FitData, fit_data
from xlhand.training.step import Step

StepCallback = Callable[[int, dict[str, float]], None]


def fit(
    space: Space,
    trainable: list[str],
    cfg: FitConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_step: StepCallback | None = None,
    stop_at: int | None = None,
    extra: dict | None = None,
    data: FitData | None = None,
) -> dict[str, float]:
    """Train the adapters of ``trainable`` hands in ``space`` in place; the others stay bit-for-bit frozen.

    With ``checkpoint``, state is saved every ``cfg.checkpoint_every`` steps and on interruption (Ctrl-C), and
    ``resume=True`` continues from it. ``stop_at`` ends the run after that many of ``cfg.steps`` steps (the
    learning-rate schedule is still ``cfg.steps`` long) and saves a checkpoint there, from which ``resume``
    continues as if never stopped. ``extra`` (JSON) is stored in the checkpoint (:func:`checkpoint_extra`).
    ``data`` (:func:`fit_data`, made once for several fits of the same hands and config) saves making it again.
    Returns the last step's loss terms.
    """
    trainable = [n for n in space.hands if n in trainable]
    names = space.hands
    if data is None:
        data = fit_data(space, trainable, cfg)
    samplers, pools, active = data.samplers, data.pools, data.active
    gen = torch.Generator().manual_seed(cfg.seed)
    start, saved = 0, None
    if resume and checkpoint is not None and checkpoint.exists():
        saved = _read_checkpoint(checkpoint, space, trainable, cfg)
        start = saved["step"]
    step_fn = Step(space, trainable, samplers, pools, active, cfg.batch)
    opt = Adam(step_fn.parameters(), lr=cfg.lr)
    if saved is not None:
        _restore_optimizer(checkpoint, saved, opt, gen)
    last: dict[str, float] = {}
    done = start
    stop = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    try:
        for step in range(start, stop):
            frac = step / max(cfg.steps - 1, 1)
            opt.lr = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * frac))
            terms = step_fn(gen)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            done = step + 1
            last = {k: float(v.detach()) for k, v in terms.items()}
            if checkpoint is not None and done < cfg.steps and (done % cfg.checkpoint_every == 0 or done == stop):
                step_fn.write_back()
                _save_checkpoint(checkpoint, space, trainable, opt, gen, done, cfg, extra)
            if on_step is not None:
                on_step(done, last)
    except KeyboardInterrupt:
        if checkpoint is not None and done > start:
            step_fn.write_back()
            _save_checkpoint(checkpoint, space, trainable, opt, gen, done, cfg, extra)
        raise
    finally:
        step_fn.write_back()
        for n in names:
            space.adapters[n].requires_grad_(False)
    return last
