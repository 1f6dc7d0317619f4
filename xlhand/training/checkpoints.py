"""Resumable fit checkpoints (safetensors): adapters, flat Adam state, generator state and step."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from xlhand._util.atomic import atomic_path
from xlhand._util.optim import Adam
from xlhand.errors import XlhandError
from xlhand.latent.space import Space, fingerprint_tensors
from xlhand.training.config import FitConfig

CHECKPOINT_LAYOUT = "flat-1"  # how optimiser state is laid out in a checkpoint


def _save_checkpoint(path: Path, space: Space, trainable, opt: Adam, gen, step: int, cfg: FitConfig,
                     extra: dict | None = None) -> None:
    """The trainable adapters (written back from the step's stacks), the optimiser state (flat, over the stacked
    tensors), the generator state and the step."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in space.tensors(trainable).items()}
    tensors["opt.exp_avg"], tensors["opt.exp_avg_sq"] = opt.exp_avg, opt.exp_avg_sq
    tensors["rng"] = gen.get_state()
    meta = {"step": step, "config": asdict(cfg), "trainable": list(trainable), "adam_t": opt.t,
            "layout": CHECKPOINT_LAYOUT, "frozen_fingerprint": _frozen_fingerprint(space, trainable),
            "extra": extra or {}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"xlhand_checkpoint": json.dumps(meta)})


def _read_checkpoint(path: Path, space: Space, trainable, cfg: FitConfig) -> dict:
    """Check that ``path`` continues this run and load its adapters into ``space``; the optimiser state is
    restored by :func:`_restore_optimizer` once the step's stacks exist."""
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
    if meta.get("layout") != CHECKPOINT_LAYOUT:
        raise XlhandError("cannot resume: the checkpoint was written by another version of xlhand; start again "
                          "without --resume", path)
    if meta.get("frozen_fingerprint") != _frozen_fingerprint(space, trainable):
        raise XlhandError("cannot resume: the frozen adapters differ from the checkpoint's", path)
    for name in trainable:
        prefix = f"model.{name}."
        space.adapters[name].load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return {"step": int(meta["step"]), "meta": meta, "tensors": tensors}


def checkpoint_extra(path: Path) -> dict:
    """The ``extra`` record a run stored in its checkpoint (see :func:`fit`); empty if it has none or the file
    is not a readable checkpoint (resuming reports that)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(json.loads((f.metadata() or {})["xlhand_checkpoint"]).get("extra") or {})
    except Exception:
        return {}


def _restore_optimizer(path: Path, saved: dict, opt: Adam, gen: torch.Generator) -> None:
    tensors = saved["tensors"]
    try:
        opt.load_state(saved["meta"]["adam_t"], tensors["opt.exp_avg"], tensors["opt.exp_avg_sq"])
    except (KeyError, ValueError):
        raise XlhandError("cannot resume: the checkpoint's optimiser state does not fit this run", path) from None
    gen.set_state(tensors["rng"])


def _frozen_fingerprint(space: Space, trainable) -> str:
    frozen = [n for n in space.hands if n not in trainable]
    return fingerprint_tensors(space.tensors(frozen)) if frozen else ""


def checkpoint_path_for(out: Path) -> Path:
    """Where a run writing ``out`` keeps its resume checkpoint."""
    return out.with_name(out.name + ".ckpt")
