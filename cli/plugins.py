"""``xlhand plugins``."""

from __future__ import annotations

import typer

from xlhand.cli.output import console, print_json


def plugins(json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List plugins: their hooks, version, the hands and drivers they register and any load errors."""
    from rich.table import Table

    from xlhand.registry import plugin_report

    rows = plugin_report()
    if json:
        print_json(rows)
        return
    table = Table(title="Plugins")
    for col in ("plugin", "version", "hooks", "hands", "drivers", "errors"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["version"] or "", ", ".join(r["hooks"]), ", ".join(r["hands"]),
                      ", ".join(r["drivers"]), "\n".join(r["errors"]))
    console.print(table)
