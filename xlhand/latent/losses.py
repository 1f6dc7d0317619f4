"""Pinch geometry and the latent-space losses (the paper's Eq. 1-4, DESIGN section 5).

A *pinch vector* ``d`` is the thumb-tip -> finger-tip vector (metres, canonical frame). Two hands are compared
only on the thumb-finger pairs both have; a hand without a thumb is compared on finger-to-finger vectors from its
first finger (``index``) to each other finger it shares with the other hand, against the same vectors of that
hand (see :func:`shared_pairs`).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from xlhand.hand.model import Hand
from xlhand.latent.space import LossSettings


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


def retarget_terms(d_source: torch.Tensor, d_target: torch.Tensor, loss: LossSettings, dim: int = -1,
                   scale: torch.Tensor | None = None) -> torch.Tensor:
    """The pinch distance + direction loss of each pair vector (the paper's Eq. 2-3), vectors along ``dim``.

    ``w * (dis * (|d_s| - |d_t|)^2 + dir * (1 - cos(d_s, d_t)))`` with ``w = exp(-dis_exp * |d_s|)``, times
    ``scale`` when given. The source side is a target to match, not trained through: no gradient reaches
    ``d_source``.
    """
    with torch.no_grad():
        ns = d_source.norm(dim=dim)
        w = torch.exp(-loss.dis_exp * ns)
        if scale is not None:
            w = w * scale
    nt = d_target.norm(dim=dim)
    cos = (d_source * d_target).sum(dim) / (ns * nt).clamp_min(1e-9)
    return w * (loss.dis * (ns - nt) ** 2 + loss.dir * (1 - cos))


def retarget_loss(d_source: torch.Tensor, d_target: torch.Tensor, loss: LossSettings) -> torch.Tensor:
    """:func:`retarget_terms` of ``(B, P, 3)`` pair vectors, mean over batch and pairs."""
    return retarget_terms(d_source, d_target, loss).mean()


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


class PinchRows(torch.autograd.Function):
    """Sum of :func:`retarget_terms` over rows gathered from fingertips, with an analytic backward.

    ``tips (R0, 3, B)``: target fingertips, one row per (finger, source block); ``to``/``frm (R,)``: the rows of
    each pair vector's ends; ``d_s (R, 3, B)``: the source pair vectors; ``scale (R, 1)``: each row's weight.
    Returns the scalar ``sum(scale * retarget_terms(d_s, d_t))`` with ``d_t = tips[to] - tips[frm]``, and
    carries the gradient back to ``tips`` only. One autograd node instead of one per elementwise op: a training
    step evaluates this for every (source, target, finger pair) row at once.

    Gradient of a row's term ``w (dis (n_t - n_s)^2 + dir (1 - d_s.d_t / max(n_s n_t, 1e-9)))`` with respect to
    ``d_t``: ``w (2 dis (n_t - n_s) + dir cos n_s / den [n_s n_t > 1e-9]) d_t / n_t - w dir d_s / den``.
    """

    @staticmethod
    def forward(ctx, tips, to, frm, d_s, scale, loss: LossSettings):
        d_t = tips.index_select(0, to) - tips.index_select(0, frm)
        ns = (d_s * d_s).sum(1).sqrt_()
        w = torch.exp(ns * -loss.dis_exp).mul_(scale)
        nt = (d_t * d_t).sum(1).sqrt_()
        prod = ns * nt
        den = prod.clamp_min(1e-9)
        cos = (d_s * d_t).sum(1).div_(den)
        diff = nt - ns
        total = (w * (loss.dis * diff * diff + loss.dir * (1 - cos))).sum()
        ctx.save_for_backward(to, frm, d_s, d_t, ns, nt, w, den, cos, diff, prod)
        ctx.loss, ctx.n_tips = loss, tips.shape[0]
        return total

    @staticmethod
    def backward(ctx, g):
        to, frm, d_s, d_t, ns, nt, w, den, cos, diff, prod = ctx.saved_tensors
        loss = ctx.loss
        dn = 2 * loss.dis * diff + torch.where(prod > 1e-9, loss.dir * cos * ns / den, 0.0)
        cn = torch.where(nt > 0, w * dn / nt, 0.0)
        cd = w * (-loss.dir) / den
        g_dt = (cn[:, None] * d_t).addcmul_(cd[:, None], d_s).mul_(g)
        g_tips = torch.zeros(ctx.n_tips, *d_t.shape[1:], dtype=d_t.dtype)
        g_tips.index_add_(0, to, g_dt).index_add_(0, frm, g_dt, alpha=-1)
        return g_tips, None, None, None, None, None
