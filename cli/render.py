"""``xlhand render hand|decode|interpolate``: pictures and animations, offscreen (no display needed)."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import typer

from xlhand.cli.output import console, err_console, print_json
from xlhand._util.atomic import check_output_file
from xlhand.errors import XlhandError

app = typer.Typer(help="Pictures of hands and of the latent space (offscreen; no display needed).",
                  no_args_is_help=True)

POSES = "random|pinch|open|fist|mid"

_output = typer.Option(..., "-o", "--output", help="The file to write.")
_markers = typer.Option(True, "--markers/--no-markers", help="Fingertip markers (hollow: hidden behind the hand).")
_seed = typer.Option(0, "--seed", min=0, help="Random seed for random poses and pinch IK starts.")
_space = typer.Option(None, "--space", help="A space name or file, or a bundle folder (default: the shipped space).")
_json = typer.Option(False, "--json", help="Print what was written as JSON.")


@contextlib.contextmanager
def _warnings_to_stderr():
    """Show the renderer's warnings (a missing mesh, a missing material file) as one line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        text = str(w.message)
        if text not in seen and issubclass(w.category, UserWarning):
            seen.add(text)
            err_console.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


def _joint_values(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise XlhandError(f"--q: expected comma-separated numbers, got {text!r}") from None


@app.command("hand")
def hand(
    target: str = typer.Argument(..., help="A registered hand name, a hand.toml, or a URDF."),
    output: Path = _output,
    q: str = typer.Option(None, "--q", help="Joint values v1,v2,... in the order `xlhand inspect` lists."),
    random: bool = typer.Option(False, "--random", help="A random configuration within the limits."),
    pinch: bool = typer.Option(False, "--pinch", help="The thumb tip on the --finger tip (short IK)."),
    pose: str = typer.Option(None, "--pose", help=f"A pose by name: {POSES} (default: open)."),
    finger: str = typer.Option("index", "--finger", help="The finger the thumb pinches."),
    seed: int = _seed,
    size: int = typer.Option(512, "--size", min=16, max=2048, help="Pixels (square)."),
    markers: bool = _markers,
    pinch_lines: bool = typer.Option(False, "--pinch-lines/--no-pinch-lines", help="Lines thumb tip -> fingertips."),
    json: bool = _json,
) -> None:
    """A picture of one hand: fingers up, palm toward the viewer, thumb on the right."""
    import torch

    from xlhand import load_hand
    from xlhand.hand.poses import pinch_distance
    from xlhand.hand.poses import pose as named
    from xlhand.render import render_hand, write_image

    chosen = [name for name, on in (("--q", q is not None), ("--random", random), ("--pinch", pinch),
                                     ("--pose", pose is not None)) if on]
    if len(chosen) > 1:
        raise XlhandError(f"give one of --q, --random, --pinch, --pose (got {', '.join(chosen)})")
    with _warnings_to_stderr():
        h = load_hand(target)
        gen = torch.Generator().manual_seed(seed)
        if q is not None:
            config = torch.tensor([_joint_values(q)])
            what = "given"
        else:
            what = "random" if random else "pinch" if pinch else pose or "open"
            config = named(h, what, generator=gen, finger=finger)
        image = render_hand(h, config, size=size, markers=markers, pinch_lines=pinch_lines or what == "pinch")
        write_image(image, output)
    info = {"output": str(output), "hand": h.name, "pose": what, "q": [round(float(v), 6) for v in config[0]]}
    if what == "pinch":
        with torch.no_grad():
            info["pinch_distance_mm"] = round(1000 * float(pinch_distance(h, config, finger)[0]), 2)
    if json:
        print_json(info)
        return
    extra = f", thumb-{finger} {info['pinch_distance_mm']:.1f} mm" if "pinch_distance_mm" in info else ""
    console.print(f"wrote {output}  ({h.name}, {what} pose{extra})", highlight=False, soft_wrap=True)


@app.command("decode")
def decode(
    source: str = typer.Option(..., "--from", help="The hand whose pose is encoded (a hand of the space)."),
    output: Path = _output,
    space: str = _space,
    pose: str = typer.Option("random", "--pose", help=f"The source pose: {POSES}."),
    finger: str = typer.Option("index", "--finger", help="The finger the thumb pinches for --pose pinch."),
    to: str = typer.Option("all", "--to", help="Target hands: all, or H1,H2,..."),
    seed: int = _seed,
    size: int = typer.Option(256, "--size", min=16, max=2048, help="Pixels per hand picture (square)."),
    markers: bool = _markers,
    pinch_lines: bool = typer.Option(True, "--pinch-lines/--no-pinch-lines", help="Lines thumb tip -> fingertips."),
    json: bool = _json,
) -> None:
    """One latent decoded on every hand, beside the source pose it came from (a labelled grid)."""
    from xlhand import load_space
    from xlhand.render import render_decode_grid, write_image

    with _warnings_to_stderr():
        sp = load_space(space)
        image = render_decode_grid(sp, source, pose, to, seed=seed, size=size, markers=markers,
                                   pinch_lines=pinch_lines, finger=finger)
        write_image(image, output)
    if json:
        print_json({"output": str(output), "source": source, "pose": pose, "targets": to, "seed": seed})
        return
    console.print(f"wrote {output}  (a {pose} {source} pose decoded on {to} hands)", highlight=False, soft_wrap=True)


@app.command("interpolate")
def interpolate(
    output: Path = _output,
    space: str = _space,
    hands: str = typer.Option("all", "--hands", help="Hands to show: all, or H1,H2,..."),
    source: str = typer.Option(None, "--from", help="The hand whose two poses are encoded (default: the first)."),
    start: str = typer.Option("random", "--start", help=f"The pose the path starts from: {POSES}."),
    end: str = typer.Option("pinch", "--end", help=f"The pose the path ends at: {POSES}."),
    frames: int = typer.Option(64, "--frames", min=2, help="Frames along the latent path."),
    fps: float = typer.Option(16.0, "--fps", min=0.1, max=120, help="Frames per second of the animation."),
    seed: int = _seed,
    size: int = typer.Option(192, "--size", min=16, max=2048, help="Pixels per hand picture (square)."),
    markers: bool = _markers,
    pinch_lines: bool = typer.Option(True, "--pinch-lines/--no-pinch-lines", help="Lines thumb tip -> fingertips."),
    json: bool = _json,
) -> None:
    """An animation (.gif or .mp4) of a straight latent path decoded on several hands at once."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from xlhand import load_space
    from xlhand.render import render_animation, render_interpolation

    check_output_file(output, (".gif", ".mp4"))
    with _warnings_to_stderr():
        sp = load_space(space)
        stream = render_interpolation(sp, hands, frames, seed, source=source, start=start, end=end, size=size,
                                      markers=markers, pinch_lines=pinch_lines)
        progress = Progress(TextColumn("[bold]render"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err_console, transient=True)
        with progress:
            task = progress.add_task("render", total=frames)

            def counted():
                for frame in stream:
                    yield frame
                    progress.advance(task)

            render_animation(counted(), output, fps=fps)
    if json:
        print_json({"output": str(output), "frames": frames, "fps": fps, "hands": hands, "start": start,
                    "end": end, "seed": seed})
        return
    console.print(f"wrote {output}  ({frames} frames, {start} -> {end}, hands: {hands})", highlight=False,
                  soft_wrap=True)


@app.command("replay")
def replay(
    record: Path = typer.Argument(..., help="A run record (.npz) written by the control loop."),
    output: Path = _output,
    hand: str = typer.Option(None, "--hand", help="The hand to draw (default: the record's)."),
    every: int = typer.Option(1, "--every", min=1, help="Draw every Nth step."),
    size: int = typer.Option(256, "--size", min=16, max=2048, help="Pixels (square)."),
    json: bool = _json,
) -> None:
    """An animation (.gif or .mp4) of a recorded run: the commanded joints, at the run's rate."""
    from xlhand import load_hand
    from xlhand.render import render_animation, render_trajectory
    from xlhand.runtime.record import read_record

    check_output_file(output, (".gif", ".mp4"))
    if output.resolve() == record.resolve():
        raise XlhandError("the output would overwrite the record", output)
    rec = read_record(record)
    with _warnings_to_stderr():
        h = load_hand(hand or rec["hand"])
        if list(h.joint_names) != rec["joint_names"]:
            raise XlhandError(f"the record's joints ({len(rec['joint_names'])}) are not {h.name}'s "
                              f"({h.dof}); give --hand", record)
        qs = rec["command"][::every]
        if len(qs) == 0:
            raise XlhandError("the record holds no steps", record)
        fps = float(rec["meta"].get("rate_hz", 20.0)) / every
        render_animation(render_trajectory(h, qs, size=size), output, fps=fps)
    if json:
        print_json({"output": str(output), "frames": len(qs), "fps": fps, "hand": h.name})
        return
    console.print(f"wrote {output}  ({len(qs)} frames of {h.name} at {fps:g} fps)", highlight=False, soft_wrap=True)
