"""``xlhand inspect PATH|NAME``."""

from __future__ import annotations

import typer

from xlhand.cli.output import console, err_console, print_json

# Library modules (they import torch) are imported inside the commands, so that `xlhand --help` stays fast.


def inspect(
    target: str = typer.Argument(..., help="A URDF file, a hand.toml, or a registered hand name."),
    json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what xlhand makes of a hand: joints, actuated DoF, fingertips and roles, canonical frame."""
    from xlhand.hand.describe import describe_hand
    from xlhand.registry import load_hand

    data = describe_hand(load_hand(target))
    if json:
        print_json(data)
        return
    show_description(data)


def show_description(data: dict) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{data['name']}[/bold]  {data['urdf']}\n"
        f"links {data['links']}, movable joints {data['movable_joints']}, mimic {data['mimic_joints']}, "
        f"[bold]actuated DoF {data['dof']}[/bold]"
    )
    if data.get("description"):
        console.print(data["description"])
    joints = Table(title="Joints")
    for col in ("#", "joint", "type", "lower", "upper", "mimic"):
        joints.add_column(col)
    i = 0
    for j in data["joints"]:
        idx = str(i) if j["actuated"] else ""
        i += j["actuated"]
        m = j["mimic"]
        mimic = f"{m['joint']} x {m['multiplier']:g} + {m['offset']:g}" if m else ""
        joints.add_row(idx, j["name"], j["type"], f"{j['lower']:.4g}", f"{j['upper']:.4g}", mimic)
    console.print(joints)
    tips = Table(title=f"Fingertips ({data['fingertips_source']})")
    for col in ("role", "link", "offset (m)", "mid-range position (m)"):
        tips.add_column(col)
    for t in data["fingertips"]:
        tips.add_row(t["role"], t["link"], str([round(v, 4) for v in t["offset"]]), str(t["position_mid_range_m"]))
    console.print(tips)
    f = data["canonical_frame"]
    console.print(f"Canonical frame ({f['source']}): xyz {f['xyz']} rpy {f['rpy']}  [dim]{f['convention']}[/dim]")
    for key, value in data.get("vendor", {}).items():
        console.print(f"{key}: {value}")
    for w in data["warnings"]:
        err_console.print(f"[yellow]warning:[/yellow] {w}")
