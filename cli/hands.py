"""``xlhand hands list|show``."""

from __future__ import annotations

import typer

from xlhand.cli.output import console, print_json

# Library modules (they import torch) are imported inside the commands, so that `xlhand --help` stays fast.

app = typer.Typer(help="Registered hands (built-in and from plugins).", no_args_is_help=True)


@app.command("list")
def list_(json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered hands."""
    from rich.table import Table

    from xlhand.registry import registry

    reg = registry()
    rows = [
        {"name": e.name, "plugin": e.plugin, "description": e.spec.description, "hand_toml": str(e.spec.path)}
        for e in sorted(reg.hands.values(), key=lambda e: e.name)
    ]
    if json:
        print_json(rows)
        return
    table = Table(title="Registered hands")
    for col in ("name", "plugin", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["plugin"], r["description"])
    console.print(table)


@app.command("show")
def show(name: str, json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one registered hand: joints, fingertips, frame, vendor data."""
    from xlhand.cli.inspect import show_description
    from xlhand.hand.describe import describe_hand
    from xlhand.registry import load_hand, registry

    hand = load_hand(name)
    data = describe_hand(hand)
    entry = registry().hands.get(hand.name)
    data["plugin"] = entry.plugin if entry else None
    data["description"] = hand.spec.description
    data["vendor"] = dict(hand.spec.vendor)
    if json:
        print_json(data)
        return
    show_description(data)
