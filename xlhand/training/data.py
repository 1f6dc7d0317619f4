"""What a fit samples: per-hand samplers with pinch templates, the active pairs, frozen sources' pools."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import torch

from xlhand.hand.model import Hand
from xlhand.hand.poses import pinch_templates
from xlhand.latent.losses import shared_pairs
from xlhand.latent.space import Space
from xlhand.training.config import FitConfig


class Sampler:
    """Draws training configurations for one hand: uniform, or a pinch template plus noise."""

    def __init__(self, hand: Hand, templates: torch.Tensor, cfg: FitConfig):
        self.hand, self.templates, self.cfg = hand, hand.normalize(templates), cfg

    def normalized(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, dof)`` in normalised joint units [-1, 1]."""
        x = torch.rand(n, self.hand.dof, generator=generator) * 2 - 1
        if len(self.templates) and self.cfg.pinch_probability > 0:
            use = torch.rand(n, generator=generator) < self.cfg.pinch_probability
            pick = torch.randint(len(self.templates), (n,), generator=generator)
            noisy = self.templates[pick] + self.cfg.template_noise * torch.randn(n, self.hand.dof, generator=generator)
            x = torch.where(use[:, None], noisy.clamp(-1, 1), x)
        return x

    def __call__(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, dof)`` joint values."""
        return self.hand.denormalize(self.normalized(n, generator))


def active_pairs(space: Space, trainable: list[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The ordered (source, target) hand pairs a fit compares, with their shared finger pairs: pairs that share
    fingers and involve at least one trainable hand."""
    hands = {n: space.hand(n) for n in space.hands}
    out = {}
    for s, t in permutations(space.hands, 2):
        p = shared_pairs(hands[s], hands[t])
        if p and (s in trainable or t in trainable):
            out[(s, t)] = p
    return out


@torch.no_grad()
def frozen_pools(space: Space, trainable: list[str], samplers: dict[str, Sampler], active: dict, n: int,
                 gen: torch.Generator) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each frozen hand that is a source of an active pair: latents ``(n, latent)`` and fingertips
    ``(F, 3, n)`` of ``n`` samples, computed once (exact: nothing being trained changes them)."""
    pools = {}
    for s in space.hands:
        if s not in trainable and any(src == s for src, _ in active):
            q = samplers[s](n, gen)
            z, _ = space.encode(s, q)
            pools[s] = (z, space.hand(s)._fk.points(q.T))
    return pools


@dataclass
class FitData:
    """What a fit samples from, which does not depend on the weights being trained: each hand's sampler (with
    its pinch templates), the active pairs and the frozen sources' pools."""

    samplers: dict[str, Sampler]
    active: dict[tuple[str, str], list[tuple[str, str]]]
    pools: dict[str, tuple[torch.Tensor, torch.Tensor]]


def fit_data(space: Space, trainable: list[str], cfg: FitConfig) -> FitData:
    """The :class:`FitData` of a fit of ``trainable`` in ``space`` (deterministic for ``cfg.seed``)."""
    for name in trainable:
        space.hand(name)
    trainable = [n for n in space.hands if n in trainable]
    hands = {n: space.hand(n) for n in space.hands}
    template_gen = torch.Generator().manual_seed(cfg.seed + 1)
    samplers = {n: Sampler(h, pinch_templates(h, cfg.templates, template_gen), cfg) for n, h in hands.items()}
    active = active_pairs(space, trainable)
    return FitData(samplers, active, frozen_pools(space, trainable, samplers, active, cfg.pool, template_gen))
