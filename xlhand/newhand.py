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
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from .errors import XlhandError
from .hand import Hand, hand_from_spec, spec_for_urdf
from .handspec import validate_name
from .urdf import matrix_rpy, parse_xml, resolve_mesh_path

TEMPLATE = "hand-plugin"
XLHAND_MIN = "0.1"  # the first xlhand with the plugin hooks the template uses
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
LICENSE_NAMES = ("license", "licence", "copying", "notice")
_MTL_FILE_KEYS = {"map_ka", "map_kd", "map_ks", "map_ke", "map_ns", "map_d", "map_bump", "bump", "disp", "decal",
                  "norm", "refl", "map_pr", "map_pm", "map_ps"}


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


def template_root(template: str = TEMPLATE):
    """The template folder shipped in the package (a :class:`importlib.resources` traversable)."""
    return resources.files("xlhand.templates").joinpath(template)


def render_template(template, dest: Path, variables: dict[str, str]) -> list[str]:
    """Render every file under ``template`` into ``dest`` (created); returns the relative paths written.

    Placeholders are substituted in file and folder names and in contents. Hidden files, ``__pycache__`` and
    ``*.pyc`` (which an install may add beside the template) are skipped.
    """

    def fill(text: str, where: str) -> str:
        def sub(m: re.Match) -> str:
            if m.group(1) not in variables:
                raise XlhandError(f"unknown template variable {{{{{m.group(1)}}}}}", where)
            return variables[m.group(1)]

        return PLACEHOLDER.sub(sub, text)

    written = []

    def walk(node, rel: Path) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name.startswith(".") or child.name == "__pycache__" or child.name.endswith(".pyc"):
                continue
            target = rel / fill(child.name, str(rel / child.name))
            if child.is_dir():
                walk(child, target)
                continue
            out = dest / target
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(fill(child.read_text(encoding="utf-8"), f"template {rel / child.name}"), encoding="utf-8")
            written.append(target.as_posix())

    dest.mkdir(parents=True, exist_ok=True)
    walk(template, Path())
    return written


# ---------------------------------------------------------------------------------------------------------------
# Copying a hand: URDF + meshes (+ their materials and textures), paths rewritten relative to the copied URDF


def _inside(path: Path, base: Path, what: str, source: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(base):
        raise XlhandError(f"{what} escapes the hand's folder {str(base)!r}", source)
    return resolved


def _referenced_files(mesh: Path) -> list[str]:
    """Files a mesh file names: an OBJ's material libraries, an MTL's texture maps, COLLADA images, glTF buffers."""
    suffix = mesh.suffix.lower()
    try:
        if suffix == ".obj":
            return [name for line in mesh.read_text(errors="replace").splitlines()
                    if line.startswith("mtllib ") for name in line.split()[1:]]
        if suffix == ".mtl":
            return [line.split()[-1] for line in mesh.read_text(errors="replace").splitlines()
                    if len(line.split()) > 1 and line.split()[0].lower() in _MTL_FILE_KEYS]
        if suffix == ".dae":
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
            root = etree.parse(str(mesh), parser).getroot()
            refs = []
            for el in root.iter("{*}init_from", "{*}ref"):
                parent = el.getparent()
                if parent is not None and etree.QName(parent).localname in ("image", "init_from") and el.text:
                    refs.append(unquote(el.text.strip()))
            return [r[len("file://"):] if r.startswith("file://") else r for r in refs if r]
        if suffix == ".gltf":
            data = json.loads(mesh.read_text())
            return [unquote(item["uri"]) for key in ("buffers", "images") for item in data.get(key, [])
                    if isinstance(item, dict) and isinstance(item.get("uri"), str)
                    and not item["uri"].startswith("data:")]
    except (OSError, ValueError, etree.XMLSyntaxError):
        return []
    return []


def copy_hand_files(urdf: Path, dest: Path) -> tuple[dict[str, str], list[str]]:
    """Copy ``urdf`` into folder ``dest`` with every file it references, keeping their layout relative to the URDF.

    ``package://`` and absolute ``file://`` paths are rewritten to paths relative to the copied URDF; a path that
    leaves the URDF's folder is refused. Missing files are left as they are and noted. Returns
    ``({URDF filename: new relative path}, notes)``.
    """
    urdf = Path(urdf)
    base = urdf.resolve().parent
    parse_xml(urdf)  # the safety checks (size, entity declarations, well-formedness), then a parse keeping layout
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    tree = etree.ElementTree(etree.fromstring(urdf.read_bytes(), parser))
    notes: list[str] = []
    mapping: dict[str, str] = {}
    to_copy: dict[Path, str] = {}  # source file -> relative destination
    changed = False
    for el in tree.getroot().iter("mesh", "texture"):
        filename = el.get("filename")
        if not filename:
            continue
        if filename not in mapping:
            src = resolve_mesh_path(filename, urdf)
            if not src.is_file():
                notes.append(f"{el.tag} {filename!r} not found; left as it is")
                mapping[filename] = filename
                continue
            mapping[filename] = src.relative_to(base).as_posix()
            to_copy[src] = mapping[filename]
        if mapping[filename] != filename:
            el.set("filename", mapping[filename])
            changed = True

    pending = list(to_copy)
    while pending:  # materials and textures named by the meshes, transitively
        mesh = pending.pop()
        for ref in _referenced_files(mesh):
            src = Path(ref) if os.path.isabs(ref) else mesh.parent / ref
            src = _inside(src, base, f"{ref!r} (named by {to_copy[mesh]})", urdf)
            if not src.is_file():
                notes.append(f"{ref!r} (named by {to_copy[mesh]}) not found")
            elif src not in to_copy:
                to_copy[src] = src.relative_to(base).as_posix()
                pending.append(src)

    dest.mkdir(parents=True, exist_ok=True)
    for src, rel in to_copy.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)
    for path in sorted(base.iterdir()):
        if path.is_file() and path.name.lower().startswith(LICENSE_NAMES) and path.name not in to_copy.values():
            shutil.copyfile(path, dest / path.name)
    if changed:
        tree.write(str(dest / urdf.name), xml_declaration=True, encoding="utf-8")
    else:
        shutil.copyfile(urdf, dest / urdf.name)
    return {k: v for k, v in mapping.items() if k != v}, notes


# ---------------------------------------------------------------------------------------------------------------
# hand.toml


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _floats(values) -> str:
    return "[" + ", ".join(repr(float(v) + 0.0) for v in values) + "]"


def hand_toml(hand: Hand, name: str, urdf_name: str, description: str, *, limits: bool = False) -> str:
    """A ``hand.toml`` pinning what was decided for ``hand``: fingertips (with offsets) and mount (xyz, rpy), and
    with ``limits`` every actuated joint's limits as the hand holds them (so a copy has the same kinematics hash)."""
    first = hand.robot.joint_by_name[hand.joint_names[0]]
    lines = [
        f"# Written by xlhand from {hand.urdf_path.name}: the fingertips and the mount are what `xlhand inspect`",
        f"# decided, pinned here. Check them with `xlhand inspect {name}` and edit to correct them; every key is",
        "# described in xlhand's docs/hand-toml.md.",
        f"name = {json.dumps(name)}",
        f"urdf = {json.dumps(urdf_name)}",
        f"description = {json.dumps(description)}",
        f"driver = {json.dumps(hand.spec.driver)}"
        + ("                   # xlhand's simulated driver, until a plugin registers a real one"
           if hand.spec.driver == "sim" else ""),
        "",
        "[fingertips]                     # role = link, or a link and a point in its frame (metres)",
    ]
    for role, tip in hand.tips.items():
        if any(tip.offset):
            lines.append(f"{role} = {{ link = {json.dumps(tip.link)}, offset = {_floats(tip.offset)} }}")
        else:
            lines.append(f"{role} = {json.dumps(tip.link)}")
    lines += [
        "",
        "[mount]                          # canonical hand frame <- URDF root, "
        + ("estimated from the geometry" if hand.mount_source == "estimated" else f"from {hand.mount_source}"),
        f"xyz = {_floats(hand.mount[:3, 3])}",
        f"rpy = {_floats(matrix_rpy(hand.mount[:3, :3]))}",
        "",
    ]
    if limits:
        lines.append("[limits]                         # actuated joint limits (radians or metres)")
        lines += [f"{_toml_key(j)} = {_floats([lo, hi])}"
                  for j, lo, hi in zip(hand.joint_names, hand.lower.tolist(), hand.upper.tolist())]
    else:
        lines += ["# [limits]                       # optional overrides of actuated joint limits (radians or metres)",
                  f"# {_toml_key(first.name)} = {_floats([first.lower, first.upper])}"]
    lines += [
        "",
        "# [vendor]                       # optional free-form strings, shown by `xlhand hands show`",
        '# maker = "..."',
        "",
    ]
    return "\n".join(lines)


def _one_line(text: str) -> str:
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
