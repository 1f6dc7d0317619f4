"""Pinch geometry and the latent-space losses (the paper's Eq. 1-4, DESIGN section 5).

A *pinch vector* ``d`` is the thumb-tip -> finger-tip vector (metres, canonical frame). Two hands are compared
only on the thumb-finger pairs both have; a hand without a thumb is compared on finger-to-finger vectors from its
first finger (``index``) to each other finger it shares with the other hand, against the same vectors of that
hand (see :func:`shared_pairs`).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .hand import Hand
from .space import LossSettings


def shared_pairs(a: Hand, b: Hand) -> list[tuple[str, str]]:
    """(from, to) finger pairs compared between hands ``a`` and ``b``.

    Both have a thumb: thumb -> each other finger both have. Otherwise (a hand without a thumb, like D'Claw):
    from the first finger both have to each other finger both have — the closest analogue of a pinch such a
    hand can make.
    """
    common = [f for f in a.fingers if f in b.fingers]
    if "thumb" in common:
        return [("thumb", f) for f in common if f != "thumb"]
    return [(common[0], f) for f in common[1:]] if len(common) >= 2 else []


def pinch_vectors(hand: Hand, tips: torch.Tensor, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """``tips (B, F, 3)`` of ``hand`` -> pair vectors ``(B, P, 3)`` for ``pairs``."""
    src, dst = _pair_index(tuple(hand.fingers), tuple(pairs))
    return tips[:, dst] - tips[:, src]


@lru_cache(maxsize=1024)
def _pair_index(fingers: tuple[str, ...], pairs: tuple[tuple[str, str], ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Finger indices (from, to) of ``pairs``; cached, since training asks for the same few every step."""
    idx = {f: i for i, f in enumerate(fingers)}
    return torch.tensor([idx[a] for a, _ in pairs]), torch.tensor([idx[b] for _, b in pairs])


def retarget_loss(d_source: torch.Tensor, d_target: torch.Tensor, loss: LossSettings) -> torch.Tensor:
    """Weighted pinch distance + direction loss, mean over batch and pairs.

    ``w * (dis * (|d_s| - |d_t|)^2 + dir * (1 - cos(d_s, d_t)))`` with ``w = exp(-dis_exp * |d_s|)``.
    """
    ns = d_source.norm(dim=-1)
    nt = d_target.norm(dim=-1)
    cos = (d_source * d_target).sum(-1) / (ns * nt).clamp_min(1e-9)
    w = torch.exp(-loss.dis_exp * ns)
    return (w * (loss.dis * (ns - nt) ** 2 + loss.dir * (1 - cos))).mean()


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)), summed over latent dims, mean over the batch."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()


def pair_errors(d_a: torch.Tensor, d_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pose pinch distance error (mm) and direction error (degrees), each averaged over pairs: ``(B,)``."""
    na, nb = d_a.norm(dim=-1), d_b.norm(dim=-1)
    dist = (na - nb).abs().mean(-1) * 1000.0
    cos = ((d_a * d_b).sum(-1) / (na * nb).clamp_min(1e-12)).clamp(-1.0, 1.0)
    ang = torch.rad2deg(torch.arccos(cos)).mean(-1)
    return dist, ang
