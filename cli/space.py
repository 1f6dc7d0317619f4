"""``xlhand pretrain``, ``xlhand import dexlatent``, ``xlhand eval``, ``xlhand spaces list``."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import typer

from xlhand.cli import output
from xlhand.cli.output import console, err_console, print_json
from xlhand.cli.progress import training_progress
from xlhand.errors import XlhandError

# Library modules (they import torch) are imported inside the commands, so that `xlhand --help` stays fast.

spaces_app = typer.Typer(help="Latent spaces.", no_args_is_help=True)
import_app = typer.Typer(help="Import latent spaces from other formats.", no_args_is_help=True)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [h for v in values for h in v.split(",") if h]


def pretrain(
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the space (.safetensors)."),
    hands: list[str] = typer.Option(None, "--hands", help="Hands to train on (default: the four built-in hands)."),
    steps: int = typer.Option(None, "--steps", min=1, help="Training steps (default 21000, batches of 256)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; a seed reproduces the space."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <output>.ckpt."),
    json: bool = typer.Option(False, "--json", help="Print what was written as JSON (messages go to stderr)."),
) -> None:
    """Train a latent space over several hands.

    Training keeps freed memory in the process (glibc); XLHAND_KEEP_MEMORY=0 leaves the allocator alone.
    """
    from xlhand._util.memory import keep_freed_memory
    from xlhand.training.pretrain import PRETRAIN_DEFAULTS
    from xlhand.training.pretrain import pretrain as run

    total = steps or PRETRAIN_DEFAULTS.steps
    command = "xlhand " + " ".join(shlex.quote(a) for a in output.invocation)
    keep_freed_memory()
    started = time.perf_counter()
    try:
        with training_progress("pretrain", total) as on_step:
            space = run(out, hands=_split(hands), steps=steps, seed=seed, resume=resume, on_step=on_step,
                        command=command)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: {out} not written; continue with --resume")
        raise SystemExit(130) from None
    seconds = time.perf_counter() - started
    _wrote(out, space, json, steps=total, seconds=round(seconds, 3))


def _wrote(out: Path, space, json: bool, **extra) -> None:
    """Say what was written: a line for people, or (``--json``) a JSON object on stdout and the line on stderr."""
    line = f"wrote {out}  hands {', '.join(space.hands)}  fingerprint {space.fingerprint[:16]}"
    if json:
        err_console.print(line)
        print_json({"path": str(out), "hands": list(space.hands), "fingerprint": space.fingerprint, **extra})
    else:
        console.print(line)


def import_dexlatent(
    checkpoint: Path = typer.Argument(..., help="The reference checkpoint (.pt)."),
    out: Path = typer.Option(..., "-o", "--output", help="Where to write the space (.safetensors)."),
    json: bool = typer.Option(False, "--json", help="Print what was written as JSON (messages go to stderr)."),
) -> None:
    """Convert the XL-VLA reference (DexLatent) checkpoint into an xlhand space over the built-in hands."""
    from xlhand.latent.dexlatent import import_dexlatent as run

    space = run(checkpoint)
    space.save(out)
    _wrote(out, space, json)


import_app.command("dexlatent")(import_dexlatent)


def eval_(
    space: str = typer.Option(None, "--space", help="Space name, file or bundle (default: the shipped default)."),
    hands: list[str] = typer.Option(None, "--hands", help="Hands to evaluate (default: all in the space)."),
    seed: int = typer.Option(0, "--seed", min=0),
    n: int = typer.Option(10_000, "--n", min=1, help="Uniform configurations per hand."),
    no_oracle: bool = typer.Option(False, "--no-oracle", help="Skip the per-pose optimisation oracle."),
    report: Path = typer.Option(None, "--report", help="Also write the results as JSON to this file."),
    json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of tables."),
    against: str = typer.Option(None, "--against", help="Also measure this space (name, file or bundle) on the "
                                "same samples and compare the two error by error."),
) -> None:
    """Measure a space with the paper's metrics: reconstruction, cross-hand transfer, oracle, smoothness."""
    import json as jsonlib

    from xlhand._util.atomic import write_text_atomic
    from xlhand.latent.metrics import compare, evaluate
    from xlhand.loading import load_space

    sp = load_space(space)
    names = _split(hands)
    for h in names or []:
        sp.hand(h)
    other = load_space(against) if against is not None else None
    if other is not None:
        for h in names or sp.hands:
            other.hand(h)
    with err_console.status("evaluating"):
        result = evaluate(sp, names, seed=seed, n=n, oracle=not no_oracle)
        if other is not None:
            result["against"] = evaluate(other, names or sp.hands, seed=seed, n=n, oracle=not no_oracle)
            try:
                result["comparison"] = compare(result, result["against"])
            except ValueError as exc:
                raise XlhandError(f"cannot compare with this space: {exc}", other.path or against) from None
    if report is not None:
        write_text_atomic(report, jsonlib.dumps(result, indent=2) + "\n")
    if json:
        print_json(result)
        return
    show_eval(result)
    if other is not None:
        show_eval(result["against"])
        show_comparison(result["comparison"])


_ERRORS = {"dist_mm": ("distance", "mm"), "dir_deg": ("direction", "deg")}


def show_comparison(c: dict) -> None:
    from rich.table import Table

    t = Table(title=f"Cross-hand transfer errors of {c['space']} against {c['against']} (same samples)")
    for col in ("poses", "from", "to", "error", "this", "against", "ratio", "at least as good"):
        t.add_column(col)
    for r in c["transfer"]:
        error, unit = _ERRORS[r["metric"]]
        t.add_row(r["poses"], r["from"], r["to"], error,
                  f"{r['value']:.2f} {unit}", f"{r['against']:.2f} {unit}", f"{r['ratio']:.3f}",
                  "yes" if r["at_least_as_good"] else "[bold red]no[/bold red]")
    console.print(t)
    t = Table(title="Reconstruction joint RMSE (rad)")
    for col in ("hand", "this", "against", "ratio"):
        t.add_column(col)
    for h, e in c["reconstruction"].items():
        t.add_row(h, f"{e['joint_rmse_rad']:.4f}", f"{e['against']:.4f}", f"{e['ratio']:.3f}")
    console.print(t)
    worse = [f"{r['poses']} {r['from']}->{r['to']} {_ERRORS[r['metric']][0]}"
             for r in c["transfer"] if not r["at_least_as_good"]]
    console.print(f"at least as good on {c['at_least_as_good']} of {c['compared']} cross-hand errors"
                  + (f"; worse on: {', '.join(worse)}" if worse else ""))


def show_eval(r: dict) -> None:
    from rich.table import Table

    console.print(f"[bold]space[/bold] {r['space']['path']}  fingerprint {r['space']['fingerprint'][:16]}  "
                  f"seed {r['seed']}  n {r['n']}")
    t = Table(title="Reconstruction")
    for c in ("hand", "joint RMSE (rad)", "fingertip RMSE (mm)"):
        t.add_column(c)
    for h, e in r["reconstruction"].items():
        t.add_row(h, f"{e['joint_rmse_rad']:.4f}", f"{e['fingertip_rmse_mm']:.2f}")
    console.print(t)
    for kind in ("random", "pinch"):
        t = Table(title=f"Cross-hand transfer, {kind} poses (distance mm / direction deg; oracle; learned/oracle)")
        for c in ("from", "to", "n", "dist mm", "dir deg", "oracle mm", "oracle deg", "ratio dist", "ratio dir"):
            t.add_column(c)
        for a, row in r["transfer"][kind].items():
            for b, e in row.items():
                if "dist_mm" not in e:
                    continue
                t.add_row(a, b, str(e["n"]), f"{e['dist_mm']:.2f}", f"{e['dir_deg']:.2f}",
                          f"{e['oracle_dist_mm']:.2f}" if "oracle_dist_mm" in e else "",
                          f"{e['oracle_dir_deg']:.2f}" if "oracle_dir_deg" in e else "",
                          f"{e['ratio_dist']:.2f}" if "ratio_dist" in e else "",
                          f"{e['ratio_dir']:.2f}" if "ratio_dir" in e else "")
        s = r["summary"].get(kind)
        if s:
            t.add_row("mean", f"{s['pairs']} pairs", "", f"{s['dist_mm']:.2f}", f"{s['dir_deg']:.2f}",
                      f"{s.get('oracle_dist_mm', float('nan')):.2f}", f"{s.get('oracle_dir_deg', float('nan')):.2f}",
                      f"{s.get('ratio_dist', float('nan')):.2f}", f"{s.get('ratio_dir', float('nan')):.2f}",
                      style="bold")
        console.print(t)
    t = Table(title="Latent continuity (noise 0.05) and interpolation smoothness (64 steps)")
    for c in ("hand", "joint change (rad)", "fingertip change (mm)", "2nd diff (mm^2)", "3rd diff (mm^2)"):
        t.add_column(c)
    for h in r["continuity"]:
        c, s = r["continuity"][h], r["smoothness"][h]
        t.add_row(h, f"{c['joint_change_rad']:.4f}", f"{c['fingertip_change_mm']:.2f}", f"{s['d2_mm2']:.4f}",
                  f"{s['d3_mm2']:.4f}")
    console.print(t)


def list_spaces(json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the spaces that ship with xlhand."""
    from rich.table import Table

    from xlhand.latent.space import DEFAULT_SPACE, read_safetensors, shipped_spaces

    rows = []
    for name, path in shipped_spaces().items():
        try:
            _, meta = read_safetensors(path)
        except XlhandError as exc:
            rows.append({"name": name, "path": str(path), "error": str(exc)})
            continue
        rows.append({
            "name": name,
            "default": name == DEFAULT_SPACE,
            "path": str(path),
            "hands": list(meta.get("adapters", {})),
            "latent_dim": meta.get("latent_dim"),
            "fingerprint": meta.get("fingerprint"),
            "provenance": meta.get("provenance", {}),
        })
    if json:
        print_json(rows)
        return
    t = Table(title="Latent spaces")
    for c in ("name", "hands", "latent", "fingerprint", "made by"):
        t.add_column(c)
    for r in rows:
        if "error" in r:
            t.add_row(r["name"], "", "", "", r["error"])
            continue
        prov = r["provenance"]
        made = prov.get("command") or prov.get("imported_from") or ""
        t.add_row(r["name"] + (" (default)" if r["default"] else ""), ", ".join(r["hands"]), str(r["latent_dim"]),
                  (r["fingerprint"] or "")[:16], made)
    console.print(t)


spaces_app.command("list")(list_spaces)
