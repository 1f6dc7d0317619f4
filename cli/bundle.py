"""``xlhand bundle create|show|plug``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from xlhand.cli.output import console, print_json

app = typer.Typer(help="VLA bundles: a frozen space, plugged hands, a policy.", no_args_is_help=True)


@app.command("create")
def create(
    directory: Path = typer.Argument(..., help="The bundle directory to create."),
    space: str = typer.Option(None, "--space", help="Space name or file (default: the shipped default)."),
    prebuilt: bool = typer.Option(False, "--prebuilt", help="The prebuilt VLA bundle: the shipped space and the "
                                  "policy trained for it."),
    policy: Path = typer.Option(None, "--policy", help="A policy file of the space to put in the bundle."),
    json: bool = typer.Option(False, "--json", help="Print the new bundle's config.json as JSON."),
) -> None:
    """Create a bundle around a space, with no policy, a policy of that space, or (--prebuilt) the shipped one."""
    from xlhand.bundle.store import create_bundle, create_prebuilt_bundle
    from xlhand.errors import XlhandError

    if prebuilt and (space is not None or policy is not None):
        raise XlhandError("--prebuilt brings the shipped space and policy; it takes no --space or --policy")
    config = create_prebuilt_bundle(directory) if prebuilt else create_bundle(directory, space, policy=policy)
    if json:
        print_json({"path": str(directory), **config})
        return
    console.print(f"created {directory}: hands {', '.join(config['hands'])}, "
                  f"space {config['space_fingerprint'][:16]}, policy {config['policy'] or 'none'}")


@app.command("show")
def show(directory: Path, json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show a bundle: its space, plugged hands and policy."""
    from xlhand.bundle.store import show_bundle

    info = show_bundle(directory)
    if json:
        print_json(info)
        return
    console.print(f"[bold]{info['path']}[/bold]  space {info['space_fingerprint'][:16]}  latent {info['latent_dim']}"
                  f"  chunk {info['chunk_length']} @ {info['rate_hz']} Hz  policy {info['policy'] or 'none'}")
    t = Table(title="Hands")
    for c in ("hand", "dof", "fingers", "adapter", "kinematics"):
        t.add_column(c)
    for name, h in info["hands"].items():
        t.add_row(name, str(h["dof"]), ", ".join(h["fingers"]), h["adapter"],
                  ", ".join(f"{k}: {v}" for k, v in h["kinematics"].items()))
    console.print(t)


@app.command("plug")
def plug(directory: Path, adapter: Path,
         hand: str = typer.Option(None, "--hand", help="The adapter's hand (default: the one it records)."),
         json: bool = typer.Option(False, "--json", help="Print the bundle's new config.json as JSON.")) -> None:
    """Plug an onboarded adapter into a bundle (checks the space fingerprint; atomic)."""
    from xlhand.bundle.store import plug as run
    from xlhand.latent.adapter_file import read_adapter

    config = run(directory, adapter, hand)
    if json:
        print_json({"path": str(directory), **config})
        return
    console.print(f"plugged {read_adapter(adapter)[1]['hand']} into {directory}")
