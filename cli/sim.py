"""``xlhand sim check|show|demos|eval``: any hand in MuJoCo, the task suite, scripted demonstrations."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import typer

from xlhand.cli.output import console, err_console, print_json
from xlhand.cli.progress import count_progress
from xlhand._util.atomic import check_output_file
from xlhand.errors import XlhandError

app = typer.Typer(help="Physics (MuJoCo): check a hand, run the task suite, record demonstrations.",
                  no_args_is_help=True)

_json = typer.Option(False, "--json", help="Print the result as JSON.")
_tasks = typer.Option("all", "--tasks", help="Comma-separated task names, or 'all' (the ones the hand can do).")


@contextlib.contextmanager
def _sim_warnings():
    """A hand's geometry fallbacks (SimWarning) as one line each on stderr."""
    from xlhand.sim.build import SimWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SimWarning)
        yield
    for w in caught:
        if issubclass(w.category, SimWarning):
            err_console.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False, soft_wrap=True)


def _mujoco() -> None:
    import importlib.util

    if importlib.util.find_spec("mujoco") is None:
        raise XlhandError("physics needs the sim extra: pip install 'xlhand[sim]'")


def _task_list(text: str, hand, *, strict: bool) -> list:
    """Tasks named in ``text`` (each must exist; with ``strict`` each must suit ``hand``), or all that suit it."""
    from xlhand.sim.tasks import TASKS, applicable, check_applicable, get_task

    if text.strip() == "all":
        return [t for t in TASKS.values() if not strict or applicable(t, hand)]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise XlhandError("--tasks: no task names given")
    tasks = [get_task(n) for n in names]
    if strict:
        for t in tasks:
            check_applicable(t, hand)
    return tasks


_workers = typer.Option(0, "--workers", min=0, help="Simulation processes (0: one per core).")


def _worker_count(n: int) -> int:
    from xlhand.sim.pool import default_workers

    return n or default_workers()


@app.command("check")
def check(
    target: str = typer.Argument(..., help="A registered hand name, a hand.toml, or a URDF."),
    seconds: float = typer.Option(2.0, "--seconds", min=0.01, max=600,
                                  help="How long the posture is held under gravity."),
    json: bool = _json,
) -> None:
    """Load a hand into MuJoCo and check it: posture hold under gravity, mimic couplings, NaN, self-overlaps at
    rest, actuator gains. Exit status 1 when a check fails."""
    _mujoco()
    from xlhand.sim.check import check_path_or_name

    with _sim_warnings():
        report = check_path_or_name(target, seconds=seconds)
    if json:
        print_json(report.to_dict())
    else:
        _print_check(report)
    if not report.passed:
        raise typer.Exit(1)


def _print_check(report) -> None:
    from rich.table import Table

    from xlhand.sim.check import DRIFT_TOL, MIMIC_TOL

    d = report.to_dict()
    if d["error"]:
        console.print(f"[red]failed:[/red] {d['error']}", highlight=False)
        return

    def mark(ok: bool) -> str:
        return "[green]ok[/green]" if ok else "[red]FAIL[/red]"

    table = Table(title=f"sim check: {d['hand']} ({d['dof']} joints, {d['mimic_joints']} mimic)")
    for col, just in (("check", "left"), ("measured", "right"), ("limit", "right"), ("", "center")):
        table.add_column(col, justify=just)
    table.add_row(f"posture drift over {d['seconds']:g} s (worst: {d['worst_joint']})", f"{d['drift']:.2e} rad",
                  f"{DRIFT_TOL:g} rad", mark(d["drift"] <= DRIFT_TOL))
    table.add_row("mimic coupling error", f"{d['mimic_error']:.2e}", f"{MIMIC_TOL:g}", mark(d["mimic_error"] <= MIMIC_TOL))
    table.add_row("finite state (no NaN)", "yes" if d["finite"] else "no", "", mark(d["finite"]))
    table.add_row("self-overlaps at rest (not simulated)", str(len(d["self_collisions"])), "", "")
    table.add_row("speed", f"{d['realtime_factor']:.0f}x real time", "", "")
    console.print(table)
    gains = Table(title="actuators (position servos)")
    for col in ("joint", "kp N·m/rad", "force limit N·m", "armature"):
        gains.add_column(col, justify="left" if col == "joint" else "right")
    for j in d["joints"]:
        gains.add_row(j["name"], f"{j['kp']:.3g}", f"{j['force_limit']:.3g}", f"{j['armature']:.2e}")
    console.print(gains)
    for c in d["self_collisions"][:5]:
        console.print(f"overlap at rest: {c['bodies'][0]} / {c['bodies'][1]} by {c['overlap'] * 1000:.1f} mm",
                      highlight=False)
    for line in d["notes"]:
        console.print(f"note: {line}", highlight=False)
    console.print("[green]passed[/green]" if report.passed else f"[red]failed:[/red] {'; '.join(report.failures())}",
                  highlight=False)


@app.command("show")
def show(
    target: str = typer.Argument(..., help="A registered hand name, a hand.toml, or a URDF."),
    task: str = typer.Option(..., "--task", help="The task to run (see `xlhand sim eval --help`)."),
    output: Path = typer.Option(..., "-o", "--output", help="The animation to write (.gif or .mp4)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Episode seed (object size, mass, friction, position)."),
    size: int = typer.Option(256, "--size", min=16, max=2048, help="Pixels (square)."),
    json: bool = _json,
) -> None:
    """Run one scripted episode of a task and write it as an animation from the scene camera."""
    _mujoco()
    from xlhand import load_hand
    from xlhand.render import render_animation
    from xlhand.sim.demonstrator import HandPlanner, run_episode
    from xlhand.sim.tasks import get_task
    from xlhand.sim.world import CONTROL_HZ, World

    check_output_file(output, (".gif", ".mp4"))
    t = get_task(task)
    with _sim_warnings():
        hand = load_hand(target)
        _task_list(t.name, hand, strict=True)
        world = World(hand, camera_size=(size, size), antialias=True)
        try:
            ep = run_episode(world, HandPlanner(hand, world), t, seed, render=True)
        finally:
            world.close()
    render_animation(list(ep.images), output, fps=CONTROL_HZ)
    result = {"hand": hand.name, "task": t.name, "seed": seed, "success": ep.success, "frames": len(ep.images),
              "output": str(output)}
    if json:
        print_json(result)
    else:
        verdict = "[green]success[/green]" if ep.success else "[red]failure[/red]"
        console.print(f"{hand.name} {t.name} seed {seed}: {verdict}; wrote {output} ({len(ep.images)} frames)")


@app.command("eval")
def eval_(
    hands: str = typer.Option(..., "--hand", "--hands", help="Comma-separated hand names, hand.toml files or URDFs."),
    controller: str = typer.Option("scripted", "--controller", help="Who acts: 'scripted' (the demonstrator)."),
    tasks: str = _tasks,
    episodes: int = typer.Option(10, "--episodes", min=1, help="Episodes per hand and task (seeds 0..N-1 + --seed)."),
    seed: int = typer.Option(0, "--seed", min=0, help="First episode seed."),
    workers: int = _workers,
    json: bool = _json,
) -> None:
    """The success table: hands x tasks, the fraction of episodes whose physical success predicate held."""
    _mujoco()
    from xlhand import load_hand
    from xlhand.sim.pool import success_table

    if controller != "scripted":
        raise XlhandError(f"unknown controller {controller!r} (controllers: scripted)")
    n_workers = _worker_count(workers)
    with _sim_warnings():
        loaded = [load_hand(h.strip()) for h in hands.split(",") if h.strip()]
    if not loaded:
        raise XlhandError("--hand: no hands given")
    # named tasks must exist; with one hand each must suit it (with several, a cell is "n/a" instead)
    task_objs = _task_list(tasks, loaded[0], strict=len(loaded) == 1 and tasks.strip() != "all")
    from xlhand.sim.tasks import applicable

    total = episodes * sum(applicable(t, h) for h in loaded for t in task_objs)
    with count_progress("episodes", total) as advance, _sim_warnings():
        table = success_table(loaded, task_objs, episodes, seed=seed, workers=n_workers, progress=advance)
    if json:
        print_json({"controller": controller, "episodes": episodes, "seed": seed, "success": table})
        return
    _print_table(table, [t.name for t in task_objs], episodes)


def _print_table(table: dict, tasks: list[str], episodes: int) -> None:
    from rich.table import Table

    out = Table(title=f"success over {episodes} episodes (n/a: the hand lacks the fingers)")
    out.add_column("hand")
    for t in tasks:
        out.add_column(t, justify="right")
    for hand, row in table.items():
        out.add_row(hand, *["n/a" if row[t] is None else f"{row[t]:.2f}" for t in tasks])
    console.print(out)


@app.command("demos")
def demos(
    hands: str = typer.Option(..., "--hands", "--hand", help="Comma-separated hands (each must be in the space)."),
    tasks: str = _tasks,
    episodes: int = typer.Option(..., "--episodes", min=1, help="Successful episodes per hand and task."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder: one LeRobotDataset v3 per hand in OUT/<hand>/."),
    space: str = typer.Option(None, "--space", help="The space whose encoders give the latents (default: shipped)."),
    size: int = typer.Option(96, "--size", min=16, max=1024, help="Camera pixels (square)."),
    workers: int = _workers,
    json: bool = _json,
) -> None:
    """Record scripted demonstrations (successful episodes only) as LeRobotDataset v3 folders, with joint actions
    and their latents. Interrupted, it resumes where it stopped: rerun the same command."""
    _mujoco()
    from xlhand import load_hand
    from xlhand.loading import load_space
    from xlhand.sim.demos import check_output_dir, record

    n_workers = _worker_count(workers)
    check_output_dir(output)
    sp = load_space(space)
    with _sim_warnings():
        loaded = [load_hand(h.strip()) for h in hands.split(",") if h.strip()]
    if not loaded:
        raise XlhandError("--hands: no hands given")
    plan = []
    for hand in loaded:
        sp.hand(hand.name)
        plan.append((hand, _task_list(tasks, hand, strict=tasks.strip() != "all")))
    reports = []
    total = sum(episodes * len(t) for _, t in plan)
    try:
        with count_progress("demos", total) as advance, _sim_warnings():
            for hand, task_objs in plan:
                reports.append(record(hand, task_objs, episodes, output / hand.name, sp, image_size=(size, size),
                                      workers=n_workers, on_attempt=lambda task, ok, h=hand.name:
                                      advance(f"{h} {task}") if ok else None))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: the episodes finished so far are kept in {output}; run the same command "
                          "again to continue")
        raise SystemExit(130) from None
    result = {r.root.name: {"path": str(r.root), "held": r.held, "added": r.added, "attempts": r.attempts}
              for r in reports}
    if json:
        print_json(result)
        return
    for name, r in result.items():
        short = [t for t, n in r["held"].items() if n < episodes]
        line = ", ".join(f"{t} {n}" for t, n in r["held"].items())
        console.print(f"{name}: {r['path']}: {line}" + (f" [yellow](short: {', '.join(short)})[/yellow]" if short else ""),
                      highlight=False)
