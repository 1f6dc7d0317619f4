"""``xlhand new hand``: turn a URDF into a pip package ``xlhand-<name>`` that registers the hand as a plugin.

The package comes from the template ``templates/hand-plugin/`` (installed as ``xlhand.templates``): plain text files
whose names and contents hold ``{{variable}}`` placeholders (see :func:`template_variables`), substituted by
:func:`render_template` — no cookiecutter, no network; an unknown placeholder is an error. Into the rendered
package's ``<package>/hand/`` folder go the URDF, every mesh and texture it references (and the material and
texture files those name), licence files found beside the URDF, and a ``hand.toml`` that pins the fingertips and
mount ``xlhand inspect`` detected, so the installed hand is exactly the inspected one.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from xlhand.errors import XlhandError
from xlhand.hand.model import Hand, hand_from_spec, spec_for_urdf
from xlhand.hand.rotation import matrix_rpy
from xlhand.hand.spec import validate_name
from xlhand.packaging.files import copy_hand_files
from xlhand.packaging.handtoml import hand_toml
from xlhand.packaging.template import render_template, template_root

XLHAND_MIN = "0.1"  # the first xlhand with the plugin hooks the template uses


@dataclass
class NewHand:
    """What :func:`new_hand` made: the package folder and its files (relative, sorted), the hand as detected."""

    path: Path
    files: list[str]
    hand: Hand
    name: str
    distribution: str
    package: str
    meshes: dict[str, str] = field(default_factory=dict)  # URDF filename -> path in the package, relative to URDF
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready description (what ``xlhand new hand --json`` prints)."""
        return {
            "path": str(self.path),
            "name": self.name,
            "distribution": self.distribution,
            "package": self.package,
            "entry_point": f"{self.name} = {self.package}",
            "files": self.files,
            "dof": self.hand.dof,
            "fingertips": {role: {"link": t.link, "offset": list(t.offset)} for role, t in self.hand.tips.items()},
            "fingertips_source": self.hand.tips_source,
            "mount": {"xyz": [float(v) for v in self.hand.mount[:3, 3]], "rpy": matrix_rpy(self.hand.mount[:3, :3]),
                      "source": self.hand.mount_source},
            "meshes": self.meshes,
            "notes": self.notes,
        }


def package_names(name: str) -> tuple[str, str]:
    """``(distribution, package)`` for hand ``name``: ``xlhand-<name>`` and ``xlhand_<name>``."""
    return "xlhand-" + name.replace("_", "-"), "xlhand_" + name.replace("-", "_")


def template_variables(name: str, hand: Hand, description: str) -> dict[str, str]:
    """Everything a template file may use as ``{{variable}}``."""
    distribution, package = package_names(name)
    return {
        "name": name,
        "distribution": distribution,
        "package": package,
        "class_name": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
        "description": description,
        "xlhand_min": XLHAND_MIN,
        "urdf": hand.urdf_path.name,
        "dof": str(hand.dof),
        "fingers": json.dumps(hand.fingers),
        "finger_list": ", ".join(hand.fingers),
        "finger_count": str(len(hand.fingers)),
    }


def _one_line(text: str) -> str:
    """``text`` fit for every place the template puts it (a TOML string, a docstring, Markdown): one line, no
    ``"``, ``\\``, ``{{`` or control characters; any other character (an emoji too) is kept."""
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(text.replace('"', "'").replace("\\", "/").replace("{{", "{ {").split()).rstrip(".")


def new_hand(name: str, urdf: str | Path, output: str | Path = ".", *, description: str | None = None) -> NewHand:
    """Create the package ``<output>/xlhand-<name>/`` for the hand described by ``urdf``.

    Refuses an invalid name or an existing folder; nothing is left behind when it fails (the package is built in a
    temporary folder beside its destination and moved into place at the end).
    """
    validate_name(name)
    urdf = Path(urdf)
    hand = hand_from_spec(spec_for_urdf(urdf, name=name))
    distribution, package = package_names(name)
    output = Path(output)
    dest = output / distribution
    if dest.exists():
        raise XlhandError("already exists; refusing to overwrite it", dest)
    description = _one_line(description) if description else f"The {name} hand for xlhand"
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{distribution}-", dir=output))
    try:
        build = staging / distribution
        render_template(template_root(), build, template_variables(name, hand, description))
        hand_dir = build / package / "hand"
        meshes, notes = copy_hand_files(urdf, hand_dir)
        (hand_dir / "hand.toml").write_text(hand_toml(hand, name, urdf.name, description), encoding="utf-8")
        if dest.exists():
            raise XlhandError("already exists; refusing to overwrite it", dest)
        build.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    return NewHand(path=dest, files=files, hand=hand, name=name, distribution=distribution, package=package,
                   meshes=meshes, notes=list(hand.notes) + notes)
