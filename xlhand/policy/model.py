"""The latent-action policy: camera image + instruction + current state -> the next chunk of actions.

An action is a latent (the hand's posture in the shared space) followed by the arm part of
``xlhand.policy.arm`` (where the anchor fingertips go and how the wrist is turned); neither names a hand. An
action expert in the style of pi0, trained by flow matching (rectified flow): a transformer over the chunk's noisy
actions (one token per step, or ``frames_per_token`` consecutive steps to a token) that attends to the
observation's tokens (a 6x6 grid of image features from a small CNN, the instruction's word embeddings, the
current state) and predicts the velocity from noise to the chunk. Sampling integrates that velocity from Gaussian
noise in ``flow_steps`` Euler steps; the observation's tokens are computed once per chunk. A small head reads the
instruction alone and gives the anchor's fingertip weights. Actions are normalised per dimension with the training
data's statistics, which are buffers of the model (saved with its weights).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from xlhand.errors import XlhandError


@dataclass(frozen=True)
class PolicyConfig:
    latent_dim: int = 32  # or, for a joint-space policy, the hand's joint count
    joint_hand: str = ""  # a joint-space policy's hand (the retargeting baseline); "" for a latent policy
    arm_dim: int = 9  # anchor position (3) and wrist rotation (6) after the latent
    roles: int = 5  # fingertip roles the anchor weighs (thumb, index, middle, ring, little)
    chunk: int = 64  # latents per chunk (20 Hz: 3.2 s)
    image_size: int = 96  # square RGB camera image
    width: int = 128
    depth: int = 4
    heads: int = 4
    max_words: int = 16
    flow_steps: int = 10
    frames_per_token: int = 1  # consecutive latents in one action token (4 learned far slower in a probe)
    vocab: tuple[str, ...] = field(default_factory=tuple)  # instruction words; index 0 pads, 1 is unused

    @property
    def action_dim(self) -> int:
        return self.latent_dim + self.arm_dim

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vocab"] = list(self.vocab)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PolicyConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["vocab"] = tuple(known.get("vocab", ()))
        return cls(**known)


def words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


def vocabulary(instructions) -> tuple[str, ...]:
    return tuple(sorted({w for text in instructions for w in words(text)}))


def tokenize(config: PolicyConfig, instructions: list[str]) -> torch.Tensor:
    """``(B, max_words)`` word indices (0: padding); a word outside the vocabulary is a one-line error."""
    index = {w: i + 2 for i, w in enumerate(config.vocab)}
    out = torch.zeros(len(instructions), config.max_words, dtype=torch.long)
    for b, text in enumerate(instructions):
        ws = words(text)
        unknown = [w for w in ws if w not in index]
        if unknown:
            raise XlhandError(f"instruction {text!r}: words the policy was not trained on: {', '.join(unknown)} "
                              f"(its vocabulary: {' '.join(config.vocab)})")
        if not ws:
            raise XlhandError("an empty instruction")
        ids = [index[w] for w in ws][: config.max_words]
        out[b, : len(ids)] = torch.tensor(ids)
    return out


def _time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = 1000.0 * t[:, None] * freqs[None]  # t in [0, 1], spread over the sinusoid bank
    return torch.cat([angles.sin(), angles.cos()], -1)


class VisionEncoder(nn.Module):
    """96x96 RGB -> a 6x6 grid of ``width``-d tokens (four stride-2 convolutions), with learned positions. Two
    pixel-coordinate channels join the colours (CoordConv), so features can say where in the image they are finer
    than a token's 16-pixel cell: where the object sits decides the grasp."""

    def __init__(self, width: int, image_size: int):
        super().__init__()
        chans = [5, 32, 64, 96, width]
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.GroupNorm(8, b), nn.SiLU()]
        self.net = nn.Sequential(*layers)
        side = image_size
        for _ in range(4):
            side = (side + 1) // 2
        self.pos = nn.Parameter(torch.zeros(side * side, width))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, H, W, 3)`` uint8 -> ``(B, N, width)``."""
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        B, _, H, W = x.shape
        ys = torch.linspace(-1, 1, H, device=x.device)[:, None].expand(H, W)
        xs = torch.linspace(-1, 1, W, device=x.device)[None, :].expand(H, W)
        f = self.net(torch.cat([x, torch.stack([xs, ys]).expand(B, 2, H, W)], 1))
        return f.flatten(2).transpose(1, 2) + self.pos


class LatentPolicy(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = c = config
        w = c.width
        self.vision = VisionEncoder(w, c.image_size)
        self.words = nn.Embedding(len(c.vocab) + 2, w, padding_idx=0)
        self.word_pos = nn.Parameter(torch.zeros(c.max_words, w))
        self.state_in = nn.Linear(c.action_dim, w)
        self.kind = nn.Parameter(torch.zeros(3, w))  # image, word, state token types
        if c.chunk % c.frames_per_token:
            raise XlhandError(f"chunk {c.chunk} is not a multiple of frames_per_token {c.frames_per_token}")
        self.action_in = nn.Linear(c.action_dim * c.frames_per_token, w)
        self.action_pos = nn.Parameter(torch.randn(c.chunk // c.frames_per_token, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        layer = nn.TransformerDecoderLayer(w, c.heads, dim_feedforward=4 * w, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerDecoder(layer, c.depth)
        self.context_blocks = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(w, c.heads, dim_feedforward=4 * w, dropout=0.0, batch_first=True,
                                       norm_first=True, activation="gelu"), 1, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, c.action_dim * c.frames_per_token))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)
        self.fingers_head = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, c.roles))
        # normalisation of actions and states (training data statistics), saved with the weights
        self.register_buffer("action_mean", torch.zeros(c.action_dim))
        self.register_buffer("action_std", torch.ones(c.action_dim))

    # -- observation -> context tokens ------------------------------------------------------------------------
    def context(self, images: torch.Tensor, tokens: torch.Tensor, state: torch.Tensor):
        """Context tokens and their padding mask from ``images (B, H, W, 3)`` uint8, ``tokens (B, max_words)``
        and the current ``state (B, action_dim)`` (not normalised)."""
        img = self.vision(images) + self.kind[0]
        wrd = self.words(tokens) + self.word_pos[: tokens.shape[1]] + self.kind[1]
        st = self.state_in(self.normalise(state))[:, None] + self.kind[2]
        ctx = torch.cat([img, wrd, st], 1)
        pad = torch.cat([torch.zeros(img.shape[:2], dtype=torch.bool, device=img.device), tokens == 0,
                         torch.zeros(st.shape[:2], dtype=torch.bool, device=img.device)], 1)
        return self.context_blocks(ctx, src_key_padding_mask=pad), pad

    def velocity(self, x: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """The flow's velocity at noisy normalised chunks ``x (B, chunk, action_dim)``, times ``t (B,)``."""
        B, T, D = x.shape
        temb = self.time_mlp(_time_embedding(t, self.config.width))
        h = self.action_in(x.reshape(B, T // self.config.frames_per_token, -1)) + self.action_pos + temb[:, None]
        h = self.blocks(h, ctx, memory_key_padding_mask=pad)
        return self.out(h).reshape(B, T, D)

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.action_mean) / self.action_std

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.action_std + self.action_mean

    def finger_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, roles)`` logits of the anchor's fingertip weights, from the instruction alone."""
        mask = (tokens != 0).float()[..., None]
        pooled = (self.words(tokens) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.fingers_head(pooled)

    @torch.no_grad()
    def finger_weights(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.finger_logits(tokens), -1)

    # -- training and sampling --------------------------------------------------------------------------------
    def loss(self, images, tokens, state, chunk, noise: torch.Tensor, t: torch.Tensor,
             weights: torch.Tensor) -> torch.Tensor:
        """Flow-matching loss on target chunks ``(B, chunk, action_dim)`` (not normalised), with the noise and the
        flow times ``t (B,)`` given (see :func:`flow_noise`), plus the KL divergence of the predicted fingertip
        weights from the episode's ``weights (B, roles)``."""
        a = self.normalise(chunk)
        x = (1 - t)[:, None, None] * noise + t[:, None, None] * a
        ctx, pad = self.context(images, tokens, state)
        v = self.velocity(x, t, ctx, pad)
        logp = torch.log_softmax(self.finger_logits(tokens), -1)
        kl = (weights * (torch.log(weights.clamp_min(1e-8)) - logp)).sum(-1).mean()
        return (v - (a - noise)).pow(2).mean() + kl

    def forward(self, images, tokens, state, chunk, noise, t, weights) -> torch.Tensor:
        """The training loss (so that DDP's wrapper, which calls ``forward``, trains it)."""
        return self.loss(images, tokens, state, chunk, noise, t, weights)

    @torch.no_grad()
    def sample(self, images, tokens, state, generator: torch.Generator | None = None,
               steps: int | None = None) -> torch.Tensor:
        """``(B, chunk, action_dim)`` actions (not normalised) by Euler integration from noise."""
        steps = steps or self.config.flow_steps
        ctx, pad = self.context(images, tokens, state)
        B = ctx.shape[0]
        x = torch.randn(B, self.config.chunk, self.config.action_dim, generator=generator)
        for k in range(steps):
            t = torch.full((B,), k / steps)
            x = x + self.velocity(x, t, ctx, pad) / steps
        return self.denormalise(x)


def flow_noise(shape: tuple[int, ...], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise and flow times for a batch of chunks; times skewed towards the noisy end, where the observation
    decides where the hand goes (pi0 does the same)."""
    noise = torch.randn(shape, generator=generator)
    t = 1.0 - torch.rand(shape[0], generator=generator).pow(0.75)
    return noise, t
