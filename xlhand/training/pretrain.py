"""Pretrain a latent space over several hands (every adapter trains) and record how it was made."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from xlhand._util.revision import source_revision
from xlhand.latent.space import Space
from xlhand.registry import load_hand
from xlhand.training.checkpoints import checkpoint_path_for
from xlhand.training.config import FitConfig
from xlhand.training.loop import StepCallback, fit

BUILTIN_HANDS = ("xhand", "ability", "inspire", "paxini")


# Batches of 256 for 21,000 steps (about 8 minutes here): evidence in docs/decisions.md (pretraining).
PRETRAIN_DEFAULTS = FitConfig(steps=21000, batch=256, checkpoint_every=1000)


def pretrain(
    out: str | Path,
    hands: list[str] | None = None,
    steps: int | None = None,
    seed: int = 0,
    resume: bool = False,
    on_step: StepCallback | None = None,
    command: str | None = None,
    config: FitConfig | None = None,
) -> Space:
    """Train a new space on ``hands`` (default: the four built-in hands) and write it atomically to ``out``.

    A checkpoint ``<out>.ckpt`` is kept while training (and on Ctrl-C) so ``resume=True`` continues the run; it is
    removed once ``out`` is written.
    """
    out = Path(out)
    cfg = replace(config or PRETRAIN_DEFAULTS, seed=seed, **({"steps": steps} if steps is not None else {}))
    hand_objs = [load_hand(h) for h in (hands or BUILTIN_HANDS)]
    space = Space.new(hand_objs, seed=seed)
    ckpt = checkpoint_path_for(out)
    t0 = time.perf_counter()
    fit(space, space.hands, cfg, checkpoint=ckpt, resume=resume, on_step=on_step)
    space.provenance = {
        "made_by": "xlhand pretrain",
        "command": command or f"xlhand pretrain --hands {','.join(space.hands)} --steps {cfg.steps} --seed {seed}",
        "steps": cfg.steps,
        "seed": seed,
        "revision": source_revision(),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "config": asdict(cfg),
    }
    space.save(out)
    ckpt.unlink(missing_ok=True)
    return space
