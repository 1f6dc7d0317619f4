"""Shared output helpers: rich for people on stdout, JSON for machines, diagnostics on stderr."""

from __future__ import annotations

import json
import sys

from rich.console import Console

invocation: list[str] = []  # the arguments of this xlhand invocation (set by main)
# wide when writing to a file or pipe, so tables keep full hand names
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
