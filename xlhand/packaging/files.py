"""Copy a URDF with every file it references (meshes, textures, licences), confined to the hand's folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from xlhand.errors import XlhandError
from xlhand.hand.urdf import resolve_mesh_path
from xlhand.hand.xmlsafe import parse_xml

LICENSE_NAMES = ("license", "licence", "copying", "notice")


_MTL_FILE_KEYS = {"map_ka", "map_kd", "map_ks", "map_ke", "map_ns", "map_d", "map_bump", "bump", "disp", "decal",
                  "norm", "refl", "map_pr", "map_pm", "map_ps"}


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
