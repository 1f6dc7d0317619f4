"""``xlhand onboard PATH``: fit a new hand into a frozen space and plug it into a bundle."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

import typer

from xlhand.cli.output import console, err_console, print_json
from xlhand.cli.progress import count_progress, training_progress
from xlhand.errors import XlhandError


def _fingertip_map(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out = {}
    for v in values:
        role, sep, link = v.partition("=")
        if not sep or not role or not link:
            raise XlhandError(f"--fingertip expects ROLE=LINK, got {v!r}")
        out[role.strip()] = link.strip()
    return out


def onboard(
    target: str = typer.Argument(..., help="A bare URDF, a hand.toml, or a registered hand name."),
    name: str = typer.Option(None, "--name", help="Name for a bare URDF's hand (default: from the file name)."),
    fingertip: list[str] = typer.Option(None, "--fingertip", help="ROLE=LINK, overrides detection (repeatable)."),
    space: str = typer.Option(None, "--space", help="Space name or file (default: the shipped default)."),
    bundle: Path = typer.Option(None, "--bundle", help="A VLA bundle: onboard into its space and plug it in."),
    out: Path = typer.Option(None, "-o", "--output", help="Adapter file (default: <hand>.adapter.safetensors)."),
    steps: int = typer.Option(None, "--steps", min=1, help="Training steps (default 3700, batches of 128); first, two "
                              "initialisations are tried for a tenth of that (at most 300 steps) each."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; a seed reproduces the adapter."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint."),
    report: Path = typer.Option(None, "--report", help="Also write the quality report as JSON to this file."),
    json: bool = typer.Option(False, "--json", help="Print the quality report as JSON (messages go to stderr)."),
    no_oracle: bool = typer.Option(False, "--no-oracle", help="Skip the per-pose optimisation oracle in the report."),
    no_eval: bool = typer.Option(False, "--no-eval", help="Skip the physics check of a bundle's policy on the new "
                                 "hand."),
    eval_episodes: int = typer.Option(3, "--eval-episodes", min=1, help="Episodes per task in the physics check."),
) -> None:
    """Fit a new hand's encoder/decoder into the frozen shared space; report its quality; plug it into a bundle.

    Training keeps freed memory in the process (glibc); XLHAND_KEEP_MEMORY=0 leaves the allocator alone.
    """
    from xlhand._util.atomic import write_text_atomic
    from xlhand._util.memory import keep_freed_memory
    from xlhand.training.onboard import ONBOARD_DEFAULTS, progress_total, resolve_hand
    from xlhand.training.onboard import onboard as run

    say = err_console if json else console  # with --json, stdout is the JSON alone
    tips = _fingertip_map(fingertip)
    hand, _ = resolve_hand(target, name, tips)
    say.print(f"[bold]{hand.name}[/bold]: {hand.dof} DoF, fingers {', '.join(hand.fingers)} "
                  f"({hand.tips_source}: {', '.join(f'{r}={t.link}' for r, t in hand.tips.items())}); "
                  f"canonical frame {hand.mount_source}")
    for note in hand.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")
    total = progress_total(steps or ONBOARD_DEFAULTS.steps)
    keep_freed_memory()
    try:
        with training_progress(f"onboard {hand.name}", total) as on_step:
            result = run(target, name=name, fingertips=tips,
                         space=space, bundle=bundle, out=out, steps=steps, seed=seed, resume=resume,
                         on_step=on_step, oracle=not no_oracle)
    except KeyboardInterrupt:
        err_console.print("interrupted: no adapter or bundle change written; continue with --resume")
        raise SystemExit(130) from None
    if report is not None:
        write_text_atomic(report, jsonlib.dumps(result.report, indent=2) + "\n")
    wrote = f"wrote {result.adapter_path}" + (f"; plugged into {result.bundle}" if result.bundle else "")
    if json:
        err_console.print(wrote)
        print_json({"adapter": str(result.adapter_path), "bundle": str(result.bundle) if result.bundle else None,
                    "report": result.report})
        return
    show_report(result.report)
    console.print(wrote)
    if result.bundle is not None and not no_eval:
        physics_check(result.bundle, result.hand.name, eval_episodes)


def physics_check(bundle: Path, hand: str, episodes: int) -> None:
    """The bundle's policy driving the new hand on every task it can do, in MuJoCo, and a GIF of each task."""
    from xlhand.bundle.config import read_config

    if not read_config(bundle).get("policy"):
        return
    try:
        import mujoco  # noqa: F401
    except ImportError:
        err_console.print("physics check skipped: MuJoCo is not installed (pip install 'xlhand[sim]')")
        return
    from xlhand.cli.policy import _controller, print_success
    from xlhand.cli.sim import _sim_warnings
    from xlhand.policy.evaluate import evaluate, write_gifs
    from xlhand.sim.pool import default_workers
    from xlhand.sim.tasks import TASKS, applicable

    controller = _controller(bundle, None, None, 16)
    _, sp = controller.load()
    h = sp.hand(hand)
    tasks = [t for t in TASKS.values() if applicable(t, h)]
    if not tasks:
        console.print(f"physics check: {hand} can do none of the tasks (its fingers: {', '.join(h.fingers)})")
        return
    with count_progress(f"physics check of {hand} with the bundle's policy", len(tasks) * episodes) as advance, \
            _sim_warnings():
        info = evaluate(controller, [h], tasks, episodes, workers=default_workers(), demonstrator=False,
                        progress=advance)
        gifs = write_gifs(Path(f"{hand}-policy"), controller, [h], tasks)
    print_success(info, [t.name for t in tasks])
    console.print(f"the policy never saw {hand} act; GIFs of its episodes: {gifs[0].parent}/", highlight=False)


def show_report(report: dict) -> None:
    from rich.table import Table

    for note in report["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    m = report["metrics"]
    t = Table(title=f"{report['hand']}: cross-hand transfer (mm / deg; learned/oracle)")
    for c in ("poses", "from", "to", "dist mm", "dir deg", "oracle mm", "oracle deg", "ratio dist", "ratio dir"):
        t.add_column(c)
    for kind in ("random", "pinch"):
        for a, row in m["transfer"][kind].items():
            for b, e in row.items():
                if "dist_mm" not in e or report["hand"] not in (a, b):
                    continue
                t.add_row(kind, a, b, f"{e['dist_mm']:.2f}", f"{e['dir_deg']:.2f}",
                          f"{e.get('oracle_dist_mm', float('nan')):.2f}", f"{e.get('oracle_dir_deg', float('nan')):.2f}",
                          f"{e.get('ratio_dist', float('nan')):.2f}", f"{e.get('ratio_dir', float('nan')):.2f}")
    console.print(t)
    s = Table(title="Summary: the new hand's pairs vs the pairs among the existing hands (same space)")
    for c in ("poses", "new mm", "existing mm", "new deg", "existing deg"):
        s.add_column(c)
    for kind, e in report["summary"].items():
        s.add_row(kind, f"{e['new_dist_mm']:.2f}", f"{e['existing_dist_mm'] or float('nan'):.2f}",
                  f"{e['new_dir_deg']:.2f}", f"{e['existing_dir_deg'] or float('nan'):.2f}")
    console.print(s)
    init = report.get("init") or {}
    if "probe_loss" in init:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in init["probe_loss"].items())
        console.print(f"initialisation: {init['chosen']} (loss after {init['probe_steps']} steps: {losses})")
    rec = m["reconstruction"].get(report["hand"])
    if rec:
        console.print(f"reconstruction: joint RMSE {rec['joint_rmse_rad']:.4f} rad, fingertip RMSE "
                      f"{rec['fingertip_rmse_mm']:.2f} mm; fit {report.get('fit_seconds')} s")
