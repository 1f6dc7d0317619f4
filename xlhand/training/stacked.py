"""Several hands' encoders (or decoders) run as one batched network, for training.

A training step runs the same small MLP shape once per hand. Run one by one, every layer of every hand is a
separate small op, and at the batch sizes that fit best (128-256) a step is dominated by per-op overhead, not
arithmetic. :class:`MLPStack` holds ``T`` adapters' layers stacked along a leading hand axis, so each layer is one
``baddbmm`` over all ``T`` hands. Hands with fewer joints are zero-padded to a common ``width``: padded encoder
inputs are zero and padded decoder outputs are never read, so padding changes no value and gets no gradient.

The stacked tensors are copies: the optimiser trains them, and :meth:`MLPStack.write_back` copies the trained
values into the adapters (:func:`xlhand.training.fit` does so at checkpoints and at the end).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from xlhand.latent.adapter import Adapter


def _blocks(seq: nn.Sequential) -> list[tuple[nn.Linear, nn.LayerNorm | None]]:
    """The (Linear, LayerNorm or None) blocks of an adapter's ``_mlp``."""
    mods = list(seq)
    out = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            out.append((m, nxt if isinstance(nxt, nn.LayerNorm) else None))
    return out


class MLPStack:
    """``T`` MLPs of one shape as a single batched network.

    Layers are Linear -> LayerNorm -> ReLU, then a plain Linear. Inputs are ``(T, N, in)`` (or ``(N, in)``, shared
    by every hand); the output is ``(T, N, out)``, or ``(T, out, N)`` with ``transpose_out`` (what
    :meth:`xlhand.hand.kinematics.FingertipFK.points` takes, with no copy in between).
    """

    def __init__(self, T: int, eps: float, transpose_out: bool):
        self.T, self.eps, self.transpose_out = T, eps, transpose_out
        self.hidden: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # W, b, gain, bias
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        # (adapter parameter, index into parameters(), its view of that stacked tensor)
        self._bindings: list[tuple[nn.Parameter, int, Callable[[torch.Tensor], torch.Tensor]]] = []

    # -- building ------------------------------------------------------------------------------------------------

    @classmethod
    def encoders(cls, adapters: list[Adapter], width: int, trainable: bool) -> "MLPStack":
        """The encoders of ``adapters``: ``(T, N, width)`` normalised joints (zero-padded) -> ``(T, N, 2 * latent)``,
        mean then log-variance."""
        blocks = [_blocks(a.encoder) for a in adapters]
        st = cls(len(adapters), blocks[0][0][1].eps, transpose_out=False)
        for k in range(len(blocks[0])):
            st._add_hidden([b[k] for b in blocks], in_width=width if k == 0 else None)
        L = adapters[0].latent_dim
        W = torch.stack([torch.cat([a.mean_head.weight, a.logvar_head.weight]).T for a in adapters])
        b = torch.stack([torch.cat([a.mean_head.bias, a.logvar_head.bias])[None] for a in adapters])
        st.last = (W.detach().clone(), b.detach().clone())
        w, bb = 4 * len(st.hidden), 4 * len(st.hidden) + 1
        for t, a in enumerate(adapters):
            st._bindings += [(a.mean_head.weight, w, lambda S, t=t: S[t, :, :L].T),
                             (a.mean_head.bias, bb, lambda S, t=t: S[t, 0, :L]),
                             (a.logvar_head.weight, w, lambda S, t=t: S[t, :, L:].T),
                             (a.logvar_head.bias, bb, lambda S, t=t: S[t, 0, L:])]
        return st._finish(trainable)

    @classmethod
    def decoders(cls, adapters: list[Adapter], width: int, trainable: bool) -> "MLPStack":
        """The decoders of ``adapters`` before their ``tanh``: latents -> ``(T, width, N)`` (rows past a hand's
        ``dof`` are padding)."""
        blocks = [_blocks(a.decoder) for a in adapters]
        st = cls(len(adapters), blocks[0][0][1].eps, transpose_out=True)
        for k in range(len(blocks[0]) - 1):
            st._add_hidden([b[k] for b in blocks])
        H = blocks[0][-1][0].in_features
        W = torch.zeros(len(adapters), width, H)
        b = torch.zeros(len(adapters), width, 1)
        for t, (a, bl) in enumerate(zip(adapters, blocks)):
            lin = bl[-1][0]
            W[t, :a.dof] = lin.weight.detach()
            b[t, :a.dof, 0] = lin.bias.detach()
        st.last = (W, b)
        w, bb = 4 * len(st.hidden), 4 * len(st.hidden) + 1
        for t, (a, bl) in enumerate(zip(adapters, blocks)):
            st._bindings += [(bl[-1][0].weight, w, lambda S, t=t, d=a.dof: S[t, :d]),
                             (bl[-1][0].bias, bb, lambda S, t=t, d=a.dof: S[t, :d, 0])]
        return st._finish(trainable)

    def _add_hidden(self, blocks: list[tuple[nn.Linear, nn.LayerNorm]], in_width: int | None = None) -> None:
        n_in = in_width or blocks[0][0].in_features
        n_out = blocks[0][0].out_features
        W = torch.zeros(self.T, n_in, n_out)
        for t, (lin, _) in enumerate(blocks):
            W[t, :lin.in_features] = lin.weight.detach().T
        b = torch.stack([lin.bias.detach()[None] for lin, _ in blocks]).clone()
        g = torch.stack([ln.weight.detach()[None] for _, ln in blocks]).clone()
        beta = torch.stack([ln.bias.detach()[None] for _, ln in blocks]).clone()
        self.hidden.append((W, b, g, beta))
        k = 4 * (len(self.hidden) - 1)
        for t, (lin, ln) in enumerate(blocks):
            self._bindings += [(lin.weight, k, lambda S, t=t, n=lin.in_features: S[t, :n].T),
                               (lin.bias, k + 1, lambda S, t=t: S[t, 0]),
                               (ln.weight, k + 2, lambda S, t=t: S[t, 0]),
                               (ln.bias, k + 3, lambda S, t=t: S[t, 0])]

    def _finish(self, trainable: bool) -> "MLPStack":
        for p in self.parameters():
            p.requires_grad_(trainable)
        return self

    # -- use -----------------------------------------------------------------------------------------------------

    def parameters(self) -> list[torch.Tensor]:
        return [p for layer in self.hidden for p in layer] + list(self.last)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the stacked values into the adapters' parameters."""
        params = self.parameters()
        for param, i, view in self._bindings:
            param.copy_(view(params[i]))

    def grads(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Each adapter parameter with its slice of the stacked gradient (after a backward pass)."""
        params = self.parameters()
        return [(param, view(params[i].grad)) for param, i, view in self._bindings if params[i].grad is not None]

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim == 2:
            h = h.expand(self.T, *h.shape)
        for W, b, g, beta in self.hidden:
            h = torch.baddbmm(b, h, W)
            h = torch.addcmul(beta, F.layer_norm(h, (W.shape[2],), eps=self.eps), g)
            h = torch.relu(h)
        W, b = self.last
        if self.transpose_out:
            return torch.baddbmm(b, W, h.transpose(1, 2))
        return torch.baddbmm(b, h, W)
