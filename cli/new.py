"""``xlhand new hand``."""

from __future__ import annotations

from pathlib import Path

import typer

from xlhand.cli.output import console, err_console, print_json

app = typer.Typer(help="Create packages from xlhand's templates.", no_args_is_help=True)


@app.command("hand")
def hand(
    name: str = typer.Argument(..., help="The hand's name (lowercase letters, digits, '-', '_'); the package is "
                                         "xlhand-NAME."),
    urdf: Path = typer.Option(..., "--urdf", help="The hand's URDF; the meshes it references are copied with it."),
    output: Path = typer.Option(Path("."), "-o", "--output", help="The folder to create xlhand-NAME/ in."),
    description: str | None = typer.Option(None, "--description", help="One line for the package's metadata."),
    json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create the pip package xlhand-NAME for a hand: the plugin template, the URDF and its meshes, and a hand.toml
    pinning the fingertips and mount that `xlhand inspect` detects."""
    from xlhand.packaging.newhand import new_hand

    result = new_hand(name, urdf, output, description=description)
    data = result.summary()
    if json:
        print_json(data)
        return
    console.print(f"Created [bold]{result.path}[/bold] ({len(result.files)} files): "
                  f"hand [bold]{name}[/bold], {data['dof']} actuated DoF")
    for role, tip in data["fingertips"].items():
        offset = "" if not any(tip["offset"]) else f" + {[round(v, 4) for v in tip['offset']]}"
        console.print(f"  {role:<7}{tip['link']}{offset}")
    m = data["mount"]
    console.print(f"  mount ({m['source']}): xyz {[round(v, 6) for v in m['xyz']]} "
                  f"rpy {[round(v, 6) for v in m['rpy']]}")
    for note in data["notes"]:
        err_console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"Next: pip install -e {result.path} && xlhand hands list")
