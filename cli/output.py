"""Shared output helpers: rich for people on stdout, JSON for machines, diagnostics on stderr."""

from __future__ import annotations

import json
import sys

from rich.console import Console

invocation: list[str] = []  # the arguments of this xlhand invocation (set by main)
console = Console()
err_console = Console(stderr=True)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
