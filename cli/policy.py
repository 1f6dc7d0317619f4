"""`xlhand policy train`: the latent-action policy from demonstrations."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from xlhand._util.atomic import check_output_file
from xlhand.cli.output import console, err_console, print_json
from xlhand.cli.progress import training_progress
from xlhand.errors import XlhandError

app = typer.Typer(help="The latent-action policy: train it on demonstrations, evaluate it in physics.",
                  no_args_is_help=True)


@app.command("train")
def train(
    data: list[str] = typer.Option(..., "--data", help="LeRobotDataset folders (`xlhand sim demos` output: "
                                   "OUT/<hand>); comma-separated or repeated."),
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the policy (.safetensors)."),
    space: str = typer.Option(None, "--space", help="The space the datasets' latents come from (default: shipped)."),
    steps: int = typer.Option(2400, "--steps", min=1, help="Training steps (the prebuilt policy's: 2400, about 30 "
                              "minutes on one CPU thread)."),
    batch: int = typer.Option(64, "--batch", min=1, help="Global batch (split over torchrun processes)."),
    lr: float = typer.Option(6e-4, "--lr", help="Peak learning rate (AdamW, warm-up then cosine)."),
    exclude: list[str] = typer.Option(None, "--exclude", help="HAND:TASK whose episodes are left out "
                                      "(repeatable; the zero-shot experiment's held-out combinations)."),
    joint_space: bool = typer.Option(False, "--joint-space", help="Learn one hand's joints instead of latents "
                                     "(the retargeting baseline of benchmarks/zero_shot.py)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; a seed reproduces the policy."),
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
    pairs = set()
    for item in exclude or []:
        hand_name, sep, task_name = item.partition(":")
        if not sep or not hand_name or not task_name:
            raise XlhandError(f"--exclude expects HAND:TASK, got {item!r}")
        pairs.add((hand_name, task_name))
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
                    run(roots, out, space_fingerprint=sp.fingerprint, cfg=cfg, resume=resume, on_step=on_step,
                        joint_space=joint_space, exclude=frozenset(pairs))
            else:
                run(roots, out, space_fingerprint=sp.fingerprint, cfg=cfg, resume=resume, joint_space=joint_space,
                    exclude=frozenset(pairs))
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


@app.command("eval")
def eval_(
    bundle: Path = typer.Option(None, "--bundle", help="A VLA bundle with a policy (its space and plugged hands)."),
    policy: Path = typer.Option(None, "--policy", help="A policy file (instead of a bundle's)."),
    space: str = typer.Option(None, "--space", help="With --policy: the space holding the hands' adapters "
                              "(name, file or bundle; default: shipped)."),
    hands: str = typer.Option(None, "--hand", "--hands", help="Comma-separated hands (default: every hand of the "
                              "space)."),
    tasks: str = typer.Option("all", "--tasks", help="Comma-separated task names, or 'all'."),
    episodes: int = typer.Option(10, "--episodes", min=1, help="Episodes per hand and task (seeds --seed..)."),
    seed: int = typer.Option(0, "--seed", min=0, help="First episode seed."),
    execute: int = typer.Option(16, "--execute", min=1, max=64, help="Steps of each 64-step chunk played before "
                                "replanning."),
    demonstrator: bool = typer.Option(True, "--demonstrator/--no-demonstrator",
                                      help="Also run the scripted demonstrator on the same seeds."),
    gif: Path = typer.Option(None, "--gif", help="Folder: one GIF per hand and task (the first seed)."),
    blind: bool = typer.Option(False, "--blind", help="Ablation: the policy sees a blank image."),
    workers: int = typer.Option(0, "--workers", min=0, help="Simulation processes (0: one per core)."),
    json: bool = typer.Option(False, "--json", help="Print the tables as JSON."),
) -> None:
    """The policy in closed loop in physics: a success table hands x tasks, the demonstrator's beside it."""
    from xlhand.cli.progress import count_progress
    from xlhand.cli.sim import _mujoco, _sim_warnings, _task_list, _worker_count
    from xlhand.policy.evaluate import evaluate, write_gifs
    from xlhand.sim.tasks import applicable

    _mujoco()
    controller = _controller(bundle, policy, space, execute)
    if blind:
        controller = dataclasses.replace(controller, blind=True)
    _, sp = controller.load()
    names = [h.strip() for h in hands.split(",") if h.strip()] if hands else sp.hands
    unknown = [n for n in names if n not in sp.hands]
    if unknown:
        raise XlhandError(f"not in the policy's space: {', '.join(unknown)} (it has {', '.join(sp.hands)}); "
                          "onboard them into the bundle first")
    loaded = [sp.hand(n) for n in names]
    task_objs = _task_list(tasks, loaded[0], strict=len(loaded) == 1 and tasks.strip() != "all")
    cells = sum(applicable(t, h) for h in loaded for t in task_objs)
    started = time.perf_counter()
    with count_progress("episodes", cells * episodes * (2 if demonstrator else 1)) as advance, _sim_warnings():
        info = evaluate(controller, loaded, task_objs, episodes, seed=seed, workers=_worker_count(workers),
                        demonstrator=demonstrator, progress=advance)
    info["policy"] = controller.policy
    info["seconds"] = round(time.perf_counter() - started, 1)
    if gif is not None:
        with _sim_warnings():
            paths = write_gifs(gif, controller, loaded, task_objs, seed)
        info["gifs"] = [str(p) for p in paths]
    if json:
        print_json(info)
        return
    print_success(info, [t.name for t in task_objs])
    if gif is not None:
        console.print(f"wrote {len(info['gifs'])} GIFs to {gif}", highlight=False)


def _controller(bundle, policy, space, execute):
    from xlhand.bundle.config import read_config
    from xlhand.policy.rollout import PolicyController

    if (bundle is None) == (policy is None):
        raise XlhandError("give either --bundle or --policy")
    if bundle is not None:
        if space is not None:
            raise XlhandError("--space goes with --policy; a bundle brings its own space")
        config = read_config(bundle)
        if not config.get("policy"):
            raise XlhandError("the bundle has no policy (create one with `xlhand bundle create --prebuilt`)",
                              bundle / "config.json")
        return PolicyController(str(bundle / config["policy"]), str(bundle), execute)
    return PolicyController(str(policy), space, execute)


def print_success(info: dict, tasks: list[str]) -> None:
    """The policy's success table, the demonstrator's in brackets where it ran."""
    from rich.table import Table

    from xlhand.policy.evaluate import mean_success

    table, demo = info["success"], info.get("demonstrator")
    title = f"policy success over {info['episodes']} episodes" + (" (demonstrator's in brackets)" if demo else "")
    out = Table(title=title)
    out.add_column("hand")
    for t in tasks:
        out.add_column(t, justify="right")
    out.add_column("mean", justify="right")

    def cell(v, d):
        return "n/a" if v is None else f"{v:.2f}" + (f" ({d:.2f})" if d is not None else "")

    for hand, row in table.items():
        drow = demo[hand] if demo else {}
        out.add_row(hand, *[cell(row[t], drow.get(t)) for t in tasks],
                    cell(mean_success({hand: row}), mean_success({hand: drow}) if demo else None))
    console.print(out)
