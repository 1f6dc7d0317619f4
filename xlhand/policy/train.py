"""Training the latent-action policy on demonstrations, in one process or under ``torchrun`` (DDP).

Every step's global batch (frame indices, flow noise and times) is drawn from a generator seeded by the run's
seed and the step number, so a resumed run and a run on several processes see the same batches as one
uninterrupted process: under DDP each process takes its slice of the global batch and the gradients are averaged.
A checkpoint beside the output (``<out>.ckpt.safetensors``: weights, AdamW state, step) is written every
``checkpoint_every`` steps and removed when the run finishes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from xlhand._util.atomic import atomic_path
from xlhand.errors import XlhandError
from xlhand.policy.data import latent_stats, load_demos
from xlhand.policy.io import save_policy
from xlhand.policy.model import LatentPolicy, PolicyConfig, flow_noise, tokenize, vocabulary


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2400
    batch: int = 64  # global batch (split over DDP processes)
    lr: float = 6e-4
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    checkpoint_every: int = 250

    def check(self) -> None:
        for name in ("steps", "batch", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise XlhandError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise XlhandError(f"--lr must be a positive number, not {self.lr}")


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".ckpt.safetensors")


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torchrun."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def distributed():
    """Join the ``torchrun`` process group when the environment names one (gloo on CPU, NCCL on GPUs)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        try:
            yield
        finally:
            dist.destroy_process_group()
    else:
        yield


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def _save_checkpoint(path: Path, model: LatentPolicy, opt: torch.optim.Optimizer, step: int, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p)
        if st:
            tensors[f"opt.{i}.exp_avg"] = st["exp_avg"].contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
            tensors[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"xlhand_policy_checkpoint": json.dumps({**meta, "step": step})})


def _load_checkpoint(path: Path, model: LatentPolicy, opt: torch.optim.Optimizer, meta: dict) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            saved = json.loads((f.metadata() or {})["xlhand_policy_checkpoint"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError, KeyError, JSONDecodeError on foreign or truncated files
        raise XlhandError(f"cannot resume: not a readable policy checkpoint ({' '.join(str(exc).split())[:160]})",
                          path) from None
    for key in ("config", "train", "space_fingerprint", "data"):
        if saved.get(key) != meta[key]:
            raise XlhandError(f"cannot resume: the checkpoint is for another run (its {key} differs); delete it "
                              "or give the same arguments", path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for i, p in enumerate(model.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"exp_avg": tensors[f"opt.{i}.exp_avg"], "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"],
                            "step": tensors[f"opt.{i}.step"].reshape(())}
    return int(saved["step"])


def train(data: list[Path], out: Path, *, space_fingerprint: str, cfg: TrainConfig = TrainConfig(),
          policy: PolicyConfig | None = None, resume: bool = True, on_step=None, joint_space: bool = False,
          exclude: frozenset = frozenset()) -> Path:
    """Train a policy on the datasets at ``data`` and write it to ``out`` (rank 0 writes; every process returns
    ``out``). ``on_step(step, {"loss": ...})`` reports progress on rank 0. ``joint_space``: the retargeting
    baseline's policy, on one hand's normalised joints instead of latents."""
    cfg.check()
    rank, world = process_rank()
    if cfg.batch % world:
        raise XlhandError(f"--batch {cfg.batch} does not split over {world} processes")
    base = policy or PolicyConfig()
    demos = load_demos(data, latent_dim=base.latent_dim, space_fingerprint=space_fingerprint,
                       joint_space=joint_space, exclude=exclude)
    side = int(demos.images.shape[1])
    extra = {"latent_dim": demos.actions.shape[1] - base.arm_dim, "joint_hand": demos.hands[0]} if joint_space else {}
    config = PolicyConfig(**{**asdict(base), "vocab": vocabulary(demos.instruction), "image_size": side, **extra})
    torch.manual_seed(cfg.seed)  # the initial weights
    model = LatentPolicy(config)
    mean, std = latent_stats(demos)
    model.action_mean.copy_(mean)
    model.action_std.copy_(std)
    tokens = tokenize(config, demos.instruction)  # per episode
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    meta = {"config": config.to_dict(), "train": asdict(cfg), "space_fingerprint": space_fingerprint,
            "data": {"episodes": len(demos.instruction), "frames": len(demos),
                     "excluded": sorted(f"{h}:{t}" for h, t in exclude)}}
    ckpt = checkpoint_path(out)
    step = 0
    if resume and ckpt.exists():
        step = _load_checkpoint(ckpt, model, opt, meta)
    ddp = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model)
    per = cfg.batch // world
    model.train()
    loss_value = float("nan")
    while step < cfg.steps:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(len(demos), (cfg.batch,), generator=g)
        noise, t = flow_noise((cfg.batch, config.chunk, config.action_dim), g)
        mine = slice(rank * per, (rank + 1) * per)
        idx, noise, t = idx[mine], noise[mine], t[mine]
        images, _, state, chunk, weights = demos.batch(idx, config.chunk)
        tok = tokens[demos.frame_episode[idx]]
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        loss = ddp(images, tok, state, chunk, noise, t, weights)  # the module's forward is its training loss
        if not torch.isfinite(loss):
            raise XlhandError(f"training diverged at step {step} (loss {float(loss)}); try a lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        loss_value = float(loss.detach())
        if world > 1:
            import torch.distributed as dist

            v = torch.tensor([loss_value])
            dist.all_reduce(v)
            loss_value = float(v) / world
        if rank == 0:
            if on_step is not None:
                on_step(step, {"loss": loss_value})
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                _save_checkpoint(ckpt, model, opt, step, meta)
    if rank == 0:
        model.eval()
        save_policy(out, model, space_fingerprint=space_fingerprint,
                    training={**meta, "final_loss": loss_value, "hands": sorted(set(demos.hands)),
                              "tasks": sorted(set(demos.tasks))})
        with contextlib.suppress(FileNotFoundError):
            ckpt.unlink()
    return out

