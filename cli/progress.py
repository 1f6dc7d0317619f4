"""Rich progress bars on stderr: training loops with live loss terms, and counted work items, both with ETA."""

from __future__ import annotations

import contextlib
import time

from xlhand.cli.output import err_console

REFRESH_S = 0.25  # seconds between redraws
LOG_S = 30.0  # seconds between plain progress lines when stderr is not a terminal (a log file, CI)


@contextlib.contextmanager
def training_progress(description: str, total: int, start: int = 0):
    """Yield an ``on_step(step, losses)`` callback that advances a bar showing the loss terms (on stderr)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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
        auto_refresh=False,  # a refresh thread competed with training for the GIL: +15 % per step, measured
    )
    task = progress.add_task(description, total=total, completed=start, terms="")
    started = False
    shown = 0.0

    logged = time.monotonic()

    def on_step(step: int, losses: dict[str, float]) -> None:
        nonlocal started, shown, logged
        now = time.monotonic()
        if not err_console.is_terminal:  # a bar is drawn only at the end there: a line now and then instead
            if step == total or now - logged >= LOG_S:
                terms = "  ".join(f"{k} {v:.4g}" for k, v in losses.items())
                err_console.print(f"{description}: step {step}/{total}  {terms}", highlight=False)
                logged = now
            return
        if not started:  # the bar appears with the first step, after set-up errors could have been reported
            progress.start()
            started = True
        if step == total or (step % 10 == 0 and now - shown >= REFRESH_S):
            terms = "  ".join(f"{k} {v:.4g}" for k, v in losses.items())
            progress.update(task, completed=step, terms=terms, refresh=True)
            shown = now

    try:
        yield on_step
    finally:
        if started:
            progress.stop()


@contextlib.contextmanager
def count_progress(what: str, total: int):
    """Yield an ``advance(info="")`` callback: one item done, ``info`` shown beside the bar (on stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=err_console,
                   transient=False)
    task = bar.add_task(what, total=total, info="")
    with bar:
        yield lambda info="": bar.update(task, advance=1, info=info)
