"""Adam, as ``torch.optim.Adam`` computes it, without importing ``torch.optim`` (whose first import pulls in
``torch._dynamo`` and costs seconds on every command that trains or fits)."""

from __future__ import annotations

import torch


class Adam:
    """Adam over a list of tensors (Kingma & Ba; the same update as ``torch.optim.Adam``, non-fused).

    ``state[i]`` holds ``step``, ``exp_avg`` and ``exp_avg_sq`` of ``params[i]`` once it has had a gradient.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state: dict[int, dict] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            st = self.state.get(i)
            if st is None:
                st = self.state[i] = {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            st["step"] += 1
            t = float(st["step"])
            st["exp_avg"].lerp_(p.grad, 1 - b1)
            st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (st["exp_avg_sq"].sqrt() / (1 - b2**t) ** 0.5).add_(self.eps)
            p.addcdiv_(st["exp_avg"], denom, value=-self.lr / (1 - b1**t))
