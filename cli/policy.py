"""`xlhand policy train`: the latent-action policy from demonstrations."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from xlhand._util.atomic import check_output_file
from xlhand.cli.output import console, err_console, print_json
from xlhand.cli.progress import training_progress
from xlhand.errors import XlhandError

app = typer.Typer(help="The latent-action policy: train it on demonstrations.", no_args_is_help=True)


@app.command("train")
def train(
    data: list[str] = typer.Option(..., "--data", help="LeRobotDataset folders (`xlhand sim demos` output: "
                                   "OUT/<hand>); comma-separated or repeated."),
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the policy (.safetensors)."),
    space: str = typer.Option(None, "--space", help="The space the datasets' latents come from (default: shipped)."),
    steps: int = typer.Option(3000, "--steps", help="Training steps."),
    batch: int = typer.Option(64, "--batch", help="Global batch (split over torchrun processes)."),
    lr: float = typer.Option(3e-4, "--lr", help="Peak learning rate (AdamW, warm-up then cosine)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; a seed reproduces the policy."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <output>.ckpt.safetensors."),
    json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Train the policy (image + instruction + latent state -> 64 latents) by flow matching. Under `torchrun
    --nproc-per-node N` the same command trains with DDP (gloo on CPU, NCCL on GPUs)."""

    from xlhand.loading import load_space
    from xlhand.policy.train import TrainConfig, checkpoint_path, distributed, process_rank
    from xlhand.policy.train import train as run

    check_output_file(out, (".safetensors",))
    roots = [Path(d) for v in data for d in v.split(",") if d]
    if not roots:
        raise XlhandError("--data: no datasets given")
    if out.resolve() in {r.resolve() for r in roots}:
        raise XlhandError("the output is one of the datasets", out)
    cfg = TrainConfig(steps=steps, batch=batch, lr=lr, seed=seed)
    cfg.check()
    sp = load_space(space)
    if not resume and checkpoint_path(out).exists():
        checkpoint_path(out).unlink()  # a fresh run: an old checkpoint would be continued by mistake
    started = time.perf_counter()
    with distributed():
        rank, world = process_rank()
        try:
            if rank == 0:
                with training_progress("policy", steps) as on_step:
                    run(roots, out, space_fingerprint=sp.fingerprint, cfg=cfg, resume=resume, on_step=on_step)
            else:
                run(roots, out, space_fingerprint=sp.fingerprint, cfg=cfg, resume=resume)
        except KeyboardInterrupt:
            if rank == 0:
                err_console.print(f"interrupted: {out} not written; continue with --resume")
            raise SystemExit(130) from None
    if rank != 0:
        return
    seconds = time.perf_counter() - started
    info = {"output": str(out), "steps": steps, "processes": world, "seconds": round(seconds, 1),
            "space_fingerprint": sp.fingerprint}
    if json:
        print_json(info)
        return
    console.print(f"wrote {out} ({steps} steps on {world} process(es), {seconds:.0f} s)", highlight=False)
