"""A rich progress bar for training loops with live loss terms and ETA."""

from __future__ import annotations

import contextlib

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .output import err_console


@contextlib.contextmanager
def training_progress(description: str, total: int, start: int = 0):
    """Yield an ``on_step(step, losses)`` callback that advances a bar showing the loss terms (on stderr)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[terms]}"),
        console=err_console,
        transient=False,
    )
    task = progress.add_task(description, total=total, completed=start, terms="")
    started = False

    def on_step(step: int, losses: dict[str, float]) -> None:
        nonlocal started
        if not started:  # the bar appears with the first step, after set-up errors could have been reported
            progress.start()
            started = True
        if step % 10 == 0 or step == total:
            terms = "  ".join(f"{k} {v:.4g}" for k, v in losses.items())
            progress.update(task, completed=step, terms=terms)

    try:
        yield on_step
    finally:
        if started:
            progress.stop()
