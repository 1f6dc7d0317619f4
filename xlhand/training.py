"""Fitting adapters: one loop for pretraining a space (every adapter trains) and onboarding (one trains, the rest
are frozen). Checkpoints are safetensors, written atomically; a run resumes exactly where it stopped.

Each step, for every source hand ``s``: sample configurations (uniform within limits, or a pinch template plus
noise with probability ``pinch_probability``), encode to the posterior mean ``z``, decode ``z`` on every other
hand ``t`` and compare pinch vectors (:mod:`xlhand.losses`); add reconstruction and KL for trainable hands.
Pairs where both hands are frozen contribute nothing and are skipped; a frozen source's latents and geometry do
not depend on anything being trained, so they are computed once for a pool of samples and drawn from it.

How a step is computed (:class:`Step`): target hands that decode the same latents form a *group* (pretraining:
one group, every hand decoding every hand's latents; onboarding: the frozen hands decoding the new hand's
latents, the new hand decoding its own, and the new hand decoding the frozen hands' pooled latents). A group's
decoders run as one stacked network (:class:`~xlhand.stacked.MLPStack`), its fingertips come from one combined
FK (:meth:`~xlhand.kinematics.FingertipFK.combine`), and every (source, target, finger pair) of the group is one
row of a single loss evaluation (:class:`~xlhand.losses.PinchRows`). The result equals decoding and comparing
pair by pair (:func:`pairwise_objective`, the readable definition the tests hold it to), in a fraction of the
ops: at the batch sizes that fit best, a step is bound by the number of ops, not by arithmetic.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from itertools import permutations
from pathlib import Path
from typing import Callable

import torch

from .atomic import atomic_path
from .errors import XlhandError
from .hand import Hand
from .kinematics import FingertipFK
from .memory import keep_freed_memory
from .losses import PinchRows, kl_loss, pinch_vectors, retarget_loss, shared_pairs
from .optim import Adam
from .poses import pinch_templates
from .space import LossSettings, Space
from .stacked import MLPStack

CHECKPOINT_LAYOUT = "flat-1"  # how optimiser state is laid out in a checkpoint


@dataclass(frozen=True)
class FitConfig:
    steps: int = 3000
    batch: int = 1024
    lr: float = 2e-3
    lr_final: float = 1e-4  # cosine decay from lr to lr_final
    pinch_probability: float = 0.5
    templates: int = 2048  # pinch templates per hand
    template_noise: float = 0.02  # std of noise added to a template, normalised joint units
    pool: int = 32768  # precomputed samples per frozen source hand
    checkpoint_every: int = 250
    seed: int = 0


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


# ---------------------------------------------------------------------------------------------------------------
# The loop


StepCallback = Callable[[int, dict[str, float]], None]


def fit(
    space: Space,
    trainable: list[str],
    cfg: FitConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_step: StepCallback | None = None,
    stop_at: int | None = None,
    extra: dict | None = None,
    data: FitData | None = None,
) -> dict[str, float]:
    """Train the adapters of ``trainable`` hands in ``space`` in place; the others stay bit-for-bit frozen.

    With ``checkpoint``, state is saved every ``cfg.checkpoint_every`` steps and on interruption (Ctrl-C), and
    ``resume=True`` continues from it. ``stop_at`` ends the run after that many of ``cfg.steps`` steps (the
    learning-rate schedule is still ``cfg.steps`` long) and saves a checkpoint there, from which ``resume``
    continues as if never stopped. ``extra`` (JSON) is stored in the checkpoint (:func:`checkpoint_extra`).
    ``data`` (:func:`fit_data`, made once for several fits of the same hands and config) saves making it again.
    Returns the last step's loss terms.
    """
    keep_freed_memory()
    trainable = [n for n in space.hands if n in trainable]
    names = space.hands
    if data is None:
        data = fit_data(space, trainable, cfg)
    samplers, pools, active = data.samplers, data.pools, data.active
    gen = torch.Generator().manual_seed(cfg.seed)
    start, saved = 0, None
    if resume and checkpoint is not None and checkpoint.exists():
        saved = _read_checkpoint(checkpoint, space, trainable, cfg)
        start = saved["step"]
    step_fn = Step(space, trainable, samplers, pools, active, cfg.batch)
    opt = Adam(step_fn.parameters(), lr=cfg.lr)
    if saved is not None:
        _restore_optimizer(checkpoint, saved, opt, gen)
    last: dict[str, float] = {}
    done = start
    stop = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    try:
        for step in range(start, stop):
            frac = step / max(cfg.steps - 1, 1)
            opt.lr = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * frac))
            terms = step_fn(gen)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            done = step + 1
            last = {k: float(v.detach()) for k, v in terms.items()}
            if checkpoint is not None and done < cfg.steps and (done % cfg.checkpoint_every == 0 or done == stop):
                step_fn.write_back()
                _save_checkpoint(checkpoint, space, trainable, opt, gen, done, cfg, extra)
            if on_step is not None:
                on_step(done, last)
    except KeyboardInterrupt:
        if checkpoint is not None and done > start:
            step_fn.write_back()
            _save_checkpoint(checkpoint, space, trainable, opt, gen, done, cfg, extra)
        raise
    finally:
        step_fn.write_back()
        for n in names:
            space.adapters[n].requires_grad_(False)
    return last


# ---------------------------------------------------------------------------------------------------------------
# One step


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

    Trainable adapters are stacked copies (:class:`~xlhand.stacked.MLPStack`): :meth:`parameters` are what the
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
    latents; retargeting: mean over active (source, target) pairs of :func:`~xlhand.losses.retarget_loss`; KL is
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


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints (safetensors; metadata holds the step and config)


def _save_checkpoint(path: Path, space: Space, trainable, opt: Adam, gen, step: int, cfg: FitConfig,
                     extra: dict | None = None) -> None:
    """The trainable adapters (written back from the step's stacks), the optimiser state (flat, over the stacked
    tensors), the generator state and the step."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in space.tensors(trainable).items()}
    tensors["opt.exp_avg"], tensors["opt.exp_avg_sq"] = opt.exp_avg, opt.exp_avg_sq
    tensors["rng"] = gen.get_state()
    meta = {"step": step, "config": asdict(cfg), "trainable": list(trainable), "adam_t": opt.t,
            "layout": CHECKPOINT_LAYOUT, "frozen_fingerprint": _frozen_fingerprint(space, trainable),
            "extra": extra or {}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"xlhand_checkpoint": json.dumps(meta)})


def _read_checkpoint(path: Path, space: Space, trainable, cfg: FitConfig) -> dict:
    """Check that ``path`` continues this run and load its adapters into ``space``; the optimiser state is
    restored by :func:`_restore_optimizer` once the step's stacks exist."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["xlhand_checkpoint"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise XlhandError(f"cannot resume: not a readable checkpoint ({' '.join(str(exc).split())[:160]})",
                          path) from None
    if meta.get("trainable") != list(trainable) or meta.get("config", {}).get("seed") != cfg.seed:
        raise XlhandError("cannot resume: the checkpoint is for another run (different hands or seed)", path)
    if meta.get("layout") != CHECKPOINT_LAYOUT:
        raise XlhandError("cannot resume: the checkpoint was written by another version of xlhand; start again "
                          "without --resume", path)
    if meta.get("frozen_fingerprint") != _frozen_fingerprint(space, trainable):
        raise XlhandError("cannot resume: the frozen adapters differ from the checkpoint's", path)
    for name in trainable:
        prefix = f"model.{name}."
        space.adapters[name].load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return {"step": int(meta["step"]), "meta": meta, "tensors": tensors}


def checkpoint_extra(path: Path) -> dict:
    """The ``extra`` record a run stored in its checkpoint (see :func:`fit`); empty if it has none or the file
    is not a readable checkpoint (resuming reports that)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(json.loads((f.metadata() or {})["xlhand_checkpoint"]).get("extra") or {})
    except Exception:
        return {}


def _restore_optimizer(path: Path, saved: dict, opt: Adam, gen: torch.Generator) -> None:
    tensors = saved["tensors"]
    try:
        opt.load_state(saved["meta"]["adam_t"], tensors["opt.exp_avg"], tensors["opt.exp_avg_sq"])
    except (KeyError, ValueError):
        raise XlhandError("cannot resume: the checkpoint's optimiser state does not fit this run", path) from None
    gen.set_state(tensors["rng"])


def _frozen_fingerprint(space: Space, trainable) -> str:
    from .space import fingerprint_tensors

    frozen = [n for n in space.hands if n not in trainable]
    return fingerprint_tensors(space.tensors(frozen)) if frozen else ""


def checkpoint_path_for(out: Path) -> Path:
    """Where a run writing ``out`` keeps its resume checkpoint."""
    return out.with_name(out.name + ".ckpt")

