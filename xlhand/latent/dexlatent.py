"""Import the XL-VLA reference latent checkpoint (DexLatent, MIT) as an xlhand space over the built-in hands.

The reference stores ``torch.save`` dicts; they are loaded with ``weights_only=True`` (no arbitrary pickles).
Its joints are normalised to [-1, 1] by the URDF limits of the actuated joints in file order, which is exactly
xlhand's convention for the built-in hands (same joints, order and limits), and its fingertip geometry lives in a
frame that differs from the canonical one by a fixed rotation, which no pinch metric can see.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from xlhand.errors import XlhandError
from xlhand.latent.adapter import Adapter
from xlhand.latent.space import LossSettings, Space
from xlhand.registry import load_hand

HANDS = {
    "xarm7_xhand_right": "xhand",
    "xarm7_ability_right": "ability",
    "xarm7_inspire_right": "inspire",
    "xarm7_paxini_right": "paxini",
}
PREFIXES = {
    "hand_encoder_backbone.": "encoder.",
    "hand_mean_head.": "mean_head.",
    "hand_logvar_head.": "logvar_head.",
    "hand_decoder.": "decoder.",
}


def load_checkpoint(path: Path) -> dict:
    """``torch.load(path, weights_only=True)`` with one-line errors."""
    if not path.is_file():
        raise XlhandError("no such file", path)
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = " ".join(str(exc).split())[:160]
        raise XlhandError(f"refused by torch.load(weights_only=True): not a plain-weights checkpoint ({first})",
                          path) from None
    except Exception as exc:
        raise XlhandError(f"not a readable PyTorch checkpoint ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:160]})", path) from None
    if not isinstance(ckpt, dict):
        raise XlhandError(f"not the DexLatent format: top level is a {type(ckpt).__name__}, expected a dict", path)
    for key in ("autoencoders", "hand_names", "config"):
        if key not in ckpt:
            raise XlhandError(f"not the DexLatent format: no {key!r} entry", path)
    return ckpt


def import_dexlatent(path: str | Path) -> Space:
    """The reference checkpoint as a :class:`Space` bound to the built-in hands."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    state = ckpt["autoencoders"]
    if not isinstance(state, dict) or not isinstance(cfg, dict):
        raise XlhandError("not the DexLatent format: 'autoencoders' and 'config' must be dicts", path)
    latent_dim = int(cfg.get("latent_dim_hand", 32))
    hidden = tuple(int(h) for h in cfg.get("hand_hidden_dims", (64, 128, 64)))
    adapters, hands = {}, {}
    for ref_name in ckpt["hand_names"]:
        if ref_name not in HANDS:
            raise XlhandError(f"unknown reference hand {ref_name!r} (known: {', '.join(HANDS)})", path)
        name = HANDS[ref_name]
        hand = load_hand(name)
        sub = {}
        for key, value in state.items():
            if not key.startswith(ref_name + "."):
                continue
            rest = key[len(ref_name) + 1 :]
            for old, new in PREFIXES.items():
                if rest.startswith(old):
                    sub[new + rest[len(old) :]] = value.to(torch.float32)
                    break
            else:
                raise XlhandError(f"not the DexLatent format: unexpected tensor {key!r}", path)
        adapter = Adapter(hand.dof, latent_dim, hidden)
        try:
            adapter.load_state_dict(sub, strict=True)
        except RuntimeError as exc:
            raise XlhandError(f"reference hand {ref_name!r} does not fit {name!r} ({hand.dof} joints): "
                              f"{str(exc).splitlines()[0]}", path) from None
        adapter.requires_grad_(False)
        adapters[name], hands[name] = adapter, hand
    loss = LossSettings(
        dis=float(cfg.get("lambda_dis", 2000.0)),
        dir=float(cfg.get("lambda_dir", 5.0)),
        dis_exp=float(cfg.get("lambda_dis_exp", 12.0)),
        kl=float(cfg.get("lambda_kl", 0.0)),
        rec=float(cfg.get("rec_hand_weight", 1.0)),
    )
    provenance = {
        "imported_from": "DexLatent reference checkpoint (MIT)",
        "checkpoint": path.name,
        "epoch": int(ckpt.get("epoch", 0)),
        "steps": int(cfg.get("num_steps", 0)),
        "batch_size": int(cfg.get("batch_size", 0)),
    }
    return Space(adapters, hands, latent_dim, hidden, loss, provenance)
