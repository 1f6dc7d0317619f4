"""One hand's encoder/decoder (:class:`Adapter`): MLPs over normalised joints, reference architecture."""

from __future__ import annotations

import torch
from torch import nn

LATENT_DIM = 32


HIDDEN = (64, 128, 64)


def _mlp(sizes: list[int], last_plain: bool) -> nn.Sequential:
    """Linear-LayerNorm-ReLU blocks; with ``last_plain`` the final Linear has no norm or activation."""
    layers: list[nn.Module] = []
    n = len(sizes) - 1
    for i in range(n):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if not (last_plain and i == n - 1):
            layers += [nn.LayerNorm(sizes[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers)


class Adapter(nn.Module):
    """One hand's encoder/decoder. Works in normalised joint units ``x in [-1, 1]^dof``."""

    def __init__(self, dof: int, latent_dim: int = LATENT_DIM, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        self.dof, self.latent_dim, self.hidden = dof, latent_dim, tuple(hidden)
        self.encoder = _mlp([dof, *hidden], last_plain=False)
        self.mean_head = nn.Linear(hidden[-1], latent_dim)
        self.logvar_head = nn.Linear(hidden[-1], latent_dim)
        self.decoder = _mlp([latent_dim, *hidden, dof], last_plain=True)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, dof)`` normalised -> ``(mean, logvar)``, each ``(B, latent_dim)``."""
        h = self.encoder(x)
        return self.mean_head(h), self.logvar_head(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B, latent_dim)`` -> normalised joints ``(B, dof)`` in (-1, 1)."""
        return torch.tanh(self.decoder(z))
