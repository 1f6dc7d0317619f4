"""One training step for all hands together (:class:`Step`), and the pair-by-pair objective it equals.

Target hands that decode the same latents form a *group* (pretraining: one group, every hand decoding every
hand's latents; onboarding: the frozen hands decoding the new hand's latents, the new hand decoding its own, and
the new hand decoding the frozen hands' pooled latents). A group's decoders run as one stacked network
(:class:`~xlhand.training.stacked.MLPStack`), its fingertips come from one combined FK
(:meth:`~xlhand.hand.kinematics.FingertipFK.combine`), and every (source, target, finger pair) of the group is one
row of a single loss evaluation (:class:`~xlhand.latent.losses.PinchRows`). The result equals decoding and
comparing pair by pair (:func:`pairwise_objective`, the readable definition the tests hold it to), in a fraction
of the ops: at the batch sizes that fit best, a step is bound by the number of ops, not by arithmetic.
"""

from __future__ import annotations

import torch

from xlhand.hand.kinematics import FingertipFK
from xlhand.hand.model import Hand
from xlhand.latent.losses import PinchRows, kl_loss, pinch_vectors, retarget_loss
from xlhand.latent.space import LossSettings, Space
from xlhand.training.data import Sampler
from xlhand.training.stacked import MLPStack


class _Group:
    """Target hands that decode the same latents (``blocks``: the source hands, in order, ``batch`` rows each),
    with one retargeting row per (source block, target, finger pair) and, when ``rec``, each target's
    reconstruction of its own block."""

    def __init__(self, space: Space, blocks: list[str], targets: list[str], decoders: MLPStack, fk: FingertipFK,
                 active, batch: int, width: int, n_terms: int, n_rec: int, src_fingers: dict[str, int],
                 rec: bool):
        self.blocks, self.targets, self.decoders, self.fk, self.rec = blocks, targets, decoders, fk, rec
        self.batch = batch
        hands = [space.hand(t) for t in targets]
        t_from, t_to, s_from, s_to, scale = [], [], [], [], []
        f_off = 0
        for t, ht in zip(targets, hands):
            for k, s in enumerate(blocks):
                pairs = active.get((s, t))
                if not pairs:
                    continue
                hs, s_off = space.hand(s), sum(src_fingers[b] for b in blocks[:k])
                for a, b in pairs:  # target ends as (finger, block); source ends as fingers of the sources
                    t_from.append((f_off + ht.fingers.index(a), k))
                    t_to.append((f_off + ht.fingers.index(b), k))
                    s_from.append(s_off + hs.fingers.index(a))
                    s_to.append(s_off + hs.fingers.index(b))
                    scale.append(1.0 / (batch * len(pairs) * n_terms))
            f_off += len(ht.fingers)
        self.rows = len(scale)
        # FK runs on the blocks the rows read (a block that is only reconstructed needs none): a contiguous range
        used = [k for _, k in t_from]
        self.fk_blocks = (min(used), max(used) + 1) if used else (0, 0)
        n = self.fk_blocks[1] - self.fk_blocks[0]
        as_t = torch.tensor
        self.t_from = as_t([f * n + k - self.fk_blocks[0] for f, k in t_from], dtype=torch.long)
        self.t_to = as_t([f * n + k - self.fk_blocks[0] for f, k in t_to], dtype=torch.long)
        self.s_from, self.s_to = as_t(s_from, dtype=torch.long), as_t(s_to, dtype=torch.long)
        self.scale = as_t(scale, dtype=torch.float32)[:, None]
        if rec:  # each target's own block, joints past its dof masked out
            self.own_block = as_t([blocks.index(t) for t in targets])
            self.own_rows = torch.arange(len(targets))
            self.train_rows = None  # set by Step: these targets' rows in its encoder stack
            mask = torch.zeros(len(targets), width, 1)
            for i, h in enumerate(hands):
                mask[i, :h.dof] = 1.0 / (batch * h.dof * n_rec)
            self.rec_weight = mask

    def retarget(self, x_hat: torch.Tensor, tips: dict[str, torch.Tensor], loss: LossSettings) -> torch.Tensor:
        """The rows' summed pinch loss for decoded joints ``x_hat (T, W, S * B)`` against source fingertips."""
        B, (k0, k1) = self.batch, self.fk_blocks
        S = k1 - k0
        q = x_hat.view(-1, x_hat.shape[2])
        pts = self.fk.points(q if S == len(self.blocks) else q[:, k0 * B:k1 * B])  # (F, 3, S * B)
        if S > 1:  # one row per (finger, block): (F * S, 3, B)
            pts = pts.view(-1, 3, S, B).transpose(1, 2).reshape(-1, 3, B)
        with torch.no_grad():
            src = _cat([tips[b] for b in self.blocks])
            d_s = src.index_select(0, self.s_to) - src.index_select(0, self.s_from)
        return PinchRows.apply(pts, self.t_to, self.t_from, d_s, self.scale, loss)


def _combined_fk(hands: list[Hand], width: int) -> FingertipFK:
    return FingertipFK.combine([(h._fk, ((h.upper.double() - h.lower.double()) / 2).numpy(),
                                 ((h.upper.double() + h.lower.double()) / 2).numpy()) for h in hands], width)


def _cat(ts: list[torch.Tensor]) -> torch.Tensor:
    return ts[0] if len(ts) == 1 else torch.cat(ts)


class Step:
    """The training objective of :func:`fit`, computed group by group (see the module docstring).

    Groups: the frozen targets that read the trainable hands' latents (retargeting out of the trained hands),
    and the trainable targets, which read their own latents (reconstruction), other trainable hands' and the
    frozen hands' pooled latents (retargeting into the trained hands) in one decoder pass.

    Trainable adapters are stacked copies (:class:`~xlhand.training.stacked.MLPStack`): :meth:`parameters` are what the
    optimiser trains and :meth:`write_back` copies them into ``space``'s adapters.
    """

    def __init__(self, space: Space, trainable: list[str], samplers: dict[str, Sampler],
                 pools: dict[str, tuple[torch.Tensor, torch.Tensor]], active: dict, batch: int):
        names = space.hands
        self.space, self.samplers, self.pools, self.batch = space, samplers, pools, batch
        self.train = [n for n in names if n in trainable]
        self.width = W = max(space.hand(n).dof for n in names)
        self.fingers = F = {n: len(space.hand(n).fingers) for n in names}
        self.encoders = MLPStack.encoders([space.adapters[n] for n in self.train], W, trainable=True)
        self.source_fk = _combined_fk([space.hand(n) for n in self.train], W)
        self.sources = [n for n in names if n in self.train or n in pools]
        keys: dict[tuple, list[str]] = {}
        for t in names:
            own = t in self.train
            blocks = tuple(s for s in self.sources if (own and s == t) or (s, t) in active)
            if blocks:
                keys.setdefault((blocks, own), []).append(t)
        n_terms, n_rec = len(active), len(self.train)
        self.groups = []
        for (blocks, own), targets in keys.items():
            decoders = MLPStack.decoders([space.adapters[t] for t in targets], W, trainable=own)
            fk = _combined_fk([space.hand(t) for t in targets], W)
            g = _Group(space, list(blocks), targets, decoders, fk, active, batch, W, n_terms, n_rec, F, rec=own)
            if own:
                g.train_rows = torch.tensor([self.train.index(t) for t in targets])
            self.groups.append(g)

    def parameters(self) -> list[torch.Tensor]:
        return self.encoders.parameters() + [p for g in self.groups if g.rec for p in g.decoders.parameters()]

    def write_back(self) -> None:
        self.encoders.write_back()
        for g in self.groups:
            if g.rec:
                g.decoders.write_back()

    def grads(self) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
        """Each trainable adapter parameter with its gradient, after a backward pass (for tests)."""
        return self.encoders.grads() + [pg for g in self.groups if g.rec for pg in g.decoders.grads()]

    def draw(self, gen: torch.Generator) -> dict:
        """One batch: normalised joints ``x (T_train, B, width)`` of the trainable hands (zero-padded), and
        latents ``(B, latent)`` and fingertips ``(F, 3, B)`` of each source (drawn from the pool of a frozen
        one)."""
        B = self.batch
        x = torch.zeros(len(self.train), B, self.width)
        latents, tips = {}, {}
        for s in self.sources:  # a fixed order: the generator is drawn from in turn
            if s in self.pools:
                z, t = self.pools[s]
                pick = torch.randint(len(z), (B,), generator=gen)
                latents[s], tips[s] = z.index_select(0, pick), t.index_select(2, pick)
            else:
                x[self.train.index(s), :, :self.samplers[s].hand.dof] = self.samplers[s].normalized(B, gen)
        with torch.no_grad():
            src_tips = self.source_fk.points(x.transpose(1, 2).reshape(-1, B)).split(
                [self.fingers[n] for n in self.train])
        tips.update(zip(self.train, src_tips))
        return {"x": x, "latents": latents, "tips": tips}

    def __call__(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One step's loss terms on a batch drawn from ``gen`` (see :meth:`objective`)."""
        return self.objective(self.draw(gen))

    def objective(self, batch: dict) -> dict[str, torch.Tensor]:
        """The loss terms ``loss``, ``rec``, ``retarget``, ``kl`` of ``batch`` (differentiable)."""
        B, W, L = self.batch, self.width, self.space.latent_dim
        x = batch["x"]
        out = self.encoders(x)  # (T_train, B, 2 * latent): mean, log-variance
        mean = out[..., :L]
        kl = kl_loss(mean, out[..., L:])
        latents = dict(batch["latents"])
        latents.update((s, mean[i]) for i, s in enumerate(self.train))
        rec = ret = torch.zeros(())
        for g in self.groups:
            x_hat = torch.tanh(g.decoders(_cat([latents[b] for b in g.blocks])))  # (T, W, S * B)
            if g.rec:  # each target decoding its own latents, against its input
                if len(g.targets) == 1:
                    k = int(g.own_block[0])
                    own = x_hat[:, :, k * B:(k + 1) * B]
                else:
                    own = x_hat.view(len(g.targets), W, len(g.blocks), B)[g.own_rows, :, g.own_block]
                target = x.index_select(0, g.train_rows).transpose(1, 2)
                rec = rec + (g.rec_weight * (own - target) ** 2).sum()
            if g.rows:
                ret = ret + g.retarget(x_hat, batch["tips"], self.space.loss)
        loss = self.space.loss
        return {"loss": loss.rec * rec + ret + loss.kl * kl, "rec": rec, "retarget": ret, "kl": kl}


def pairwise_objective(space: Space, trainable: list[str], latents: dict[str, torch.Tensor],
                       targets_x: dict[str, torch.Tensor], tips: dict[str, torch.Tensor],
                       active: dict) -> dict[str, torch.Tensor]:
    """The objective :class:`Step` computes, written pair by pair: the definition it is tested against.

    ``latents[s] (B, latent)`` and ``tips[s] (B, F, 3)`` for every source; ``targets_x[t] (B, dof)`` normalised
    joints for every trainable hand. Reconstruction: mean over trainable hands of the MSE of decoding their own
    latents; retargeting: mean over active (source, target) pairs of :func:`~xlhand.latent.losses.retarget_loss`; KL is
    left to the caller (it depends on the encoder only).
    """
    rec = [((space.adapters[t].decode(latents[t]) - targets_x[t]) ** 2).mean() for t in space.hands
           if t in trainable]
    ret = []
    for (s, t), pairs in active.items():
        ht, hs = space.hand(t), space.hand(s)
        q_t = ht.denormalize(space.adapters[t].decode(latents[s]))
        ret.append(retarget_loss(pinch_vectors(hs, tips[s], pairs), pinch_vectors(ht, ht.fingertips(q_t), pairs),
                                 space.loss))
    zero = torch.zeros(())
    return {"rec": torch.stack(rec).mean() if rec else zero, "retarget": torch.stack(ret).mean() if ret else zero}


def pairwise_terms(space: Space, trainable: list[str], batch: dict, active: dict) -> dict[str, torch.Tensor]:
    """:meth:`Step.objective`'s loss terms on a :meth:`Step.draw` batch, computed the naive way: each trainable
    hand encoded by its own adapter and its fingertips by its own FK, then :func:`pairwise_objective`."""
    latents, tips, targets, kl = {}, {}, {}, []
    for i, n in enumerate(t for t in space.hands if t in trainable):
        hand = space.hand(n)
        x = batch["x"][i, :, :hand.dof]
        mean, logvar = space.adapters[n].encode(x)
        kl.append(kl_loss(mean, logvar))
        latents[n], targets[n], tips[n] = mean, x, hand.fingertips(hand.denormalize(x))
    for n, z in batch["latents"].items():
        latents[n], tips[n] = z, batch["tips"][n].permute(2, 0, 1)
    terms = pairwise_objective(space, trainable, latents, targets, tips, active)
    terms["kl"] = torch.stack(kl).mean()
    loss = space.loss
    terms["loss"] = loss.rec * terms["rec"] + terms["retarget"] + loss.kl * terms["kl"]
    return terms
