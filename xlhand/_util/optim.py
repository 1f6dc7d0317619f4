"""Adam, as ``torch.optim.Adam`` computes it, without importing ``torch.optim`` (whose first import pulls in
``torch._dynamo`` and costs seconds on every command that trains or fits)."""

from __future__ import annotations

import torch


class Adam:
    """Adam over a list of float32 tensors (Kingma & Ba; the update of ``torch.optim.Adam``).

    The parameters are moved into one flat buffer (each tensor becomes a view of it, in place) and their gradients
    are views of one flat gradient buffer that autograd accumulates into, so an update is seven ops whatever the
    number of tensors; at the batch sizes xlhand trains with, a loop over tensors cost more than the arithmetic.
    All parameters step together: ``t`` counts the updates made, ``exp_avg`` and ``exp_avg_sq`` are flat.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        with torch.no_grad():
            self.flat = torch.cat([p.detach().reshape(-1) for p in self.params]) if self.params else torch.zeros(0)
            self.grad = torch.zeros_like(self.flat)
            start = 0
            for p in self.params:
                n = p.numel()
                p.data = self.flat[start:start + n].view_as(p)
                p.grad = self.grad[start:start + n].view_as(p)
                start += n
        self.t = 0
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.t += 1
        g = self.grad
        self.exp_avg.lerp_(g, 1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.exp_avg_sq.sqrt() / (1 - b2**self.t) ** 0.5).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-self.lr / (1 - b1**self.t))

    def load_state(self, t: int, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor) -> None:
        """Continue from a saved state (``t`` updates made, flat moment buffers)."""
        if exp_avg.shape != self.flat.shape or exp_avg_sq.shape != self.flat.shape:
            raise ValueError(f"optimiser state of {tuple(exp_avg.shape)} does not fit {tuple(self.flat.shape)}")
        self.t = int(t)
        self.exp_avg.copy_(exp_avg)
        self.exp_avg_sq.copy_(exp_avg_sq)
